/**
 * The llama.cpp engine through the whole platform versus node-llama-cpp called directly.
 *
 *   node --import tsx bench/llama.ts [--model /path/to/model.gguf] [--requests 20] [--max-tokens 64]
 *                                    [--threads 1] [--rounds N] [--phase-seconds 45] [--in-process]
 *                                    [--no-tiny] [--timeout-seconds N] [--write-docs]
 *   (flags: bench/llama/flags.ts, which also shows a short smoke run)
 *
 * Models: always the generated tiny model (services/inference/src/engines/llama-cpp/tiny-gguf.ts, unless --no-tiny), then the
 * GGUF given with --model. Per model, three paths serve the same chat request
 * (`temperature: 0`, `top_p: 1`, `max_tokens` N, one user message that carries the request number):
 *
 *  - direct raw:    node-llama-cpp only, the prompt rendered the way the engine renders it before
 *                   the clock starts (bench/llama/direct.ts). The floor.
 *  - direct engine: our `createLlamaCppEngine({modelPath, gpu: 'cpu', threads, parallel: 2}).generate()`
 *                   in this process (prompt rendering, sequence pool, event queue included).
 *  - platform:      HTTP streaming to the gateway → auth → quota → gRPC → inference worker → node-llama-cpp,
 *                   as four processes or in-process (bench/llama/platform.ts; the output says which).
 *
 * All three paths are loaded at once and, after 2 discarded warm-up requests each, take turns in
 * rounds with a rotating order (bench/llama/rounds.ts). Per request:
 *  - TTFT = request start → first non-empty content delta (platform: the socket chunk carrying
 *    the first content delta reaches the client; direct: the first non-empty text chunk/delta);
 *  - decode tok/s = (completion tokens − 1) / (last token time − first token time), where the
 *    completion tokens are the sampled tokens (usage.completion_tokens via
 *    stream_options.include_usage; the sequence's token meter for the raw path; EOS included when
 *    the reply ends on it) and the last token time is when the end of generation is known (the
 *    finish_reason chunk / the engine's final event / generateCompletionWithMeta resolving).
 * Medians and p90 (p10 for rates: the slow tail), nearest-rank over the requests of a path ×
 * concurrency (bench/lib/stats.ts). The whole run gets at most --timeout-seconds.
 *
 * The tiny model's greedy reply is 62 characters then EOS, so its max_tokens is capped at 60 (every
 * request then stops on length with exactly 60 tokens). All paths must produce the same greedy text;
 * the run checks that. Prints figures only (README "bench/"); no assertions on speed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeTinyGguf } from '../services/inference/src/engines/llama-cpp/tiny-gguf.js';
import { unthrottledTiers } from '../test/helpers/tiers.js';
import { ChildProcesses } from './lib/procs.js';
import { Cleanups, type LlamaContext } from './llama/context.js';
import { FlagError, parseLlamaFlags, type LlamaFlags } from './llama/flags.js';
import { report, writeDocs } from './llama/report.js';
import { benchModel, type ModelRun } from './llama/rounds.js';

const TINY_REPLY_CHARS = 62;
const TINY_MAX_TOKENS = 60;
/** Time kept free at the end for cleanup and the report. */
const RESERVE_MS = 15_000;

let flags: LlamaFlags;
try {
  flags = parseLlamaFlags(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`${err instanceof FlagError || err instanceof TypeError ? err.message : String(err)}\n`);
  process.exit(2);
}

const t0 = Date.now();
const ctx: LlamaContext = {
  root: path.resolve(import.meta.dirname, '..'),
  children: new ChildProcesses(),
  flags,
  softDeadline: t0 + flags.timeoutMs - RESERVE_MS,
  cleanups: new Cleanups(),
  log: (msg) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`),
};

// Child processes are always cleaned up: signals stop gracefully, and bench/lib/procs.ts SIGKILLs
// survivors when this process exits.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    ctx.log(`${signal}: stopping`);
    setTimeout(() => process.exit(130), 10_000).unref();
    void ctx.cleanups.runAll().finally(() => process.exit(130));
  });
}
setTimeout(() => {
  process.stderr.write(`bench/llama.ts: exceeded ${flags.timeoutMs / 1000} s; killing child processes and exiting\n`);
  process.exit(3);
}, flags.timeoutMs).unref();

async function main(): Promise<void> {
  const loads = [os.loadavg()[0] ?? Number.NaN];
  const work = mkdtempSync(path.join(os.tmpdir(), 'xero-bench-llama-'));
  ctx.cleanups.add(async () => rmSync(work, { recursive: true, force: true }));
  const tiersFile = unthrottledTiers();
  ctx.cleanups.add(async () => rmSync(path.dirname(tiersFile), { recursive: true, force: true }));
  const models: ModelRun[] = [];
  if (flags.tiny) {
    const file = path.join(work, 'xerotier-tiny-successor.gguf');
    await writeTinyGguf(file);
    const maxTokens = Math.min(flags.maxTokens, TINY_MAX_TOKENS);
    const note =
      flags.maxTokens > TINY_MAX_TOKENS
        ? `Its greedy reply is ${TINY_REPLY_CHARS} characters then EOS, so --max-tokens ${flags.maxTokens} is capped at ${TINY_MAX_TOKENS} for it (every request stops on length).`
        : `Its greedy reply is ${TINY_REPLY_CHARS} characters then EOS; max_tokens ${maxTokens} stops before it.`;
    models.push(await benchModel(ctx, { label: 'tiny (generated)', file, maxTokens, note }, tiersFile));
  }
  if (flags.userModel !== undefined) {
    const note = 'A reply that ends on EOS before max_tokens counts the EOS token (as usage does on every path).';
    models.push(await benchModel(ctx, { label: path.basename(flags.userModel), file: flags.userModel, maxTokens: flags.maxTokens, note }, tiersFile));
  }
  loads.push(os.loadavg()[0] ?? Number.NaN);
  await ctx.cleanups.runAll();
  const section = report(models, flags, loads);
  process.stdout.write(`\n${section}\n`);
  if (flags.writeDocs) writeDocs(ctx.root, section, ctx.log);
  process.exitCode = models.some((m) => m.phases.size > 0) ? 0 : 1;
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench/llama.ts failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  await ctx.cleanups.runAll();
  process.exitCode = 1;
}
// node-llama-cpp and the HTTP agent may keep handles; don't wait for them once the report is out.
process.exit();
