/**
 * The llama.cpp engine through the whole platform versus node-llama-cpp called directly.
 *
 *   node --import tsx bench/llama.ts [--model /path/to/model.gguf] [--requests 20] [--max-tokens 64]
 *                                    [--threads 1] [--rounds N] [--phase-seconds 45] [--in-process]
 *                                    [--no-tiny] [--timeout-seconds N] [--write-docs]
 *
 * Models: always the generated tiny model (services/inference/src/engines/llama-cpp/tiny-gguf.ts, unless --no-tiny), then the
 * GGUF given with --model. Per model, three paths serve the same chat request
 * (`temperature: 0`, `top_p: 1`, `max_tokens` N, one user message that carries the request number):
 *
 *  - direct raw:    node-llama-cpp only. `getLlama({gpu: false, build: 'never'})`, one context with
 *                   2 sequences and the same threads/context size as the engine, the prompt rendered
 *                   with the model's chat wrapper the way the engine renders it (before the clock
 *                   starts), then `LlamaCompletion.generateCompletionWithMeta` with the engine's
 *                   sampling options. The floor.
 *  - direct engine: our `createLlamaCppEngine({modelPath, gpu: 'cpu', threads, parallel: 2}).generate()`
 *                   in this process (prompt rendering, sequence pool, event queue included).
 *  - platform:      HTTP streaming to the gateway → auth → quota → gRPC → inference worker
 *                   (INFERENCE_ENGINE=llama-cpp, INFERENCE_CAPACITY=2) → node-llama-cpp. By default
 *                   the four processes are spawned like scripts/start.ts does (free ports,
 *                   127.0.0.1, LOG_LEVEL=warn); if that fails, or with --in-process, the platform
 *                   runs in this process via test/helpers/platform.ts (client and services then share
 *                   one event loop, and that helper captures debug logs). The output says which.
 *
 * All three paths are loaded at once (an idle path costs no CPU) and, after 2 discarded warm-up
 * requests each, take turns: `--requests` requests one at a time, then `--requests` two at a time,
 * each split into --rounds rounds (default: as many as requests, so the paths alternate request by
 * request, pairs at concurrency 2) with a rotating path order, so drifting load from other work on
 * the host hits every path alike. A path × concurrency gets at most --phase-seconds in all; the
 * whole run at most --timeout-seconds (170 with the tiny model only). Per request:
 *  - TTFT = request start → first non-empty content delta (platform: the socket chunk carrying
 *    the first content delta reaches the client; direct: the first non-empty text chunk/delta);
 *  - decode tok/s = (completion tokens − 1) / (last token time − first token time), where the
 *    completion tokens are the sampled tokens (usage.completion_tokens via
 *    stream_options.include_usage; the sequence's token meter for the raw path; EOS included when
 *    the reply ends on it) and the last token time is when the end of generation is known (the
 *    finish_reason chunk / the engine's final event / generateCompletionWithMeta resolving).
 * Medians and p90 (p10 for rates: the slow tail) over the requests of a path × concurrency.
 * `--write-docs` replaces (or appends) only the "## llama.cpp engine: gateway vs direct" section of
 * docs/BENCHMARKS.md, and only when that file exists.
 *
 * The tiny model's greedy reply is 62 characters then EOS, so its max_tokens is capped at 60 (every
 * request then stops on length with exactly 60 tokens). All paths must produce the same greedy text;
 * the run checks that. Prints figures only (README "bench/"); no assertions on speed.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  LlamaCompletion,
  LlamaLogLevel,
  getLlama,
  resolveChatWrapper,
  type LlamaText,
  type Token,
} from 'node-llama-cpp';
import { createLogger } from '../lib/logging/logger.js';
import { writeTinyGguf } from '../services/inference/src/engines/llama-cpp/tiny-gguf.js';
import type { ChatMessage } from '../services/inference/src/engines/engine.js';
import { createLlamaCppEngine } from '../services/inference/src/engines/llama-cpp/llama-cpp-engine.js';
import { toChatHistory } from '../services/inference/src/engines/llama-cpp/prompt.js';
import { startOurPlatform, type OurPlatform } from './lib/targets.js';
import { unthrottledTiers } from '../test/helpers/tiers.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const TINY_REPLY_CHARS = 62;
const TINY_MAX_TOKENS = 60;
const PARALLEL = 2;
const WARMUP = 2;
const REQUEST_TIMEOUT_MS = 120_000;
const DOCS_FILE = path.join(ROOT, 'docs/BENCHMARKS.md');
const DOCS_HEADING = '## llama.cpp engine: gateway vs direct';

// ---------------------------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------------------------

const { values: flags } = parseArgs({
  options: {
    model: { type: 'string' },
    requests: { type: 'string', default: '20' },
    'max-tokens': { type: 'string', default: '64' },
    threads: { type: 'string', default: '1' },
    'in-process': { type: 'boolean', default: false },
    'no-tiny': { type: 'boolean', default: false },
    'phase-seconds': { type: 'string', default: '45' },
    rounds: { type: 'string' },
    'timeout-seconds': { type: 'string' },
    'write-docs': { type: 'boolean', default: false },
  },
  allowPositionals: false,
});

function intFlag(name: string, value: string | undefined, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`--${name} must be an integer in ${min}..${max} (got ${String(value)})\n`);
    process.exit(2);
  }
  return n;
}

const REQUESTS = intFlag('requests', flags.requests, 1, 10_000);
const MAX_TOKENS = intFlag('max-tokens', flags['max-tokens'], 1, 100_000);
const THREADS = intFlag('threads', flags.threads, 1, 1024);
const PHASE_MS = intFlag('phase-seconds', flags['phase-seconds'], 1, 3600) * 1000;
/** Default: one round per request, i.e. the paths alternate request by request (pairs at concurrency 2). */
const ROUNDS = Math.min(REQUESTS, intFlag('rounds', flags.rounds ?? String(REQUESTS), 1, 10_000));
const USER_MODEL = flags.model === undefined ? undefined : path.resolve(flags.model);
if (USER_MODEL !== undefined && !existsSync(USER_MODEL)) {
  process.stderr.write(`--model: no such file: ${USER_MODEL}\n`);
  process.exit(2);
}
if (flags['no-tiny'] && USER_MODEL === undefined) {
  process.stderr.write('--no-tiny needs --model\n');
  process.exit(2);
}
/** Whole run: < 3 min with the tiny model only; a user model gets 15 min more unless told. */
const TIMEOUT_MS =
  intFlag('timeout-seconds', flags['timeout-seconds'] ?? (USER_MODEL === undefined ? '170' : '1070'), 10, 24 * 3600) * 1000;
/** Time kept free at the end for cleanup and the report. */
const RESERVE_MS = 15_000;

const t0 = Date.now();
const hardDeadline = t0 + TIMEOUT_MS;
const softDeadline = hardDeadline - RESERVE_MS;
const log = (msg: string): void => {
  process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
};

// ---------------------------------------------------------------------------------------------
// Child processes: always cleaned up (bench/lib/procs.ts SIGKILLs survivors on exit; signals stop gracefully).
// ---------------------------------------------------------------------------------------------

let cleanups: Array<() => Promise<void>> = [];
async function cleanupAll(): Promise<void> {
  const list = cleanups.reverse();
  cleanups = [];
  for (const c of list) await c().catch(() => undefined);
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping`);
    const force = setTimeout(() => process.exit(130), 10_000);
    force.unref();
    void cleanupAll().finally(() => process.exit(130));
  });
}
setTimeout(() => {
  process.stderr.write(`bench/llama.ts: exceeded ${TIMEOUT_MS / 1000} s; killing child processes and exiting\n`);
  process.exit(3); // bench/lib/procs.ts's exit hook kills the children
}, TIMEOUT_MS).unref();

// ---------------------------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------------------------

interface Sample {
  ttftMs: number;
  /** NaN when fewer than 2 tokens or no time between first and last. */
  decodeTps: number;
  completionTokens: number;
  finish: string;
  text: string;
}

/** One request: `index` numbers the prompt, `slot` is the concurrent lane (raw path: its sequence). */
type Runner = (index: number, slot: number) => Promise<Sample>;

interface Phase {
  samples: Sample[];
  failures: number;
  firstError: string | undefined;
  wallMs: number;
  /** Sum of completion tokens / wall time of the phase. */
  aggregateTps: number;
  stoppedEarly: boolean;
}

function messagesFor(index: number): ChatMessage[] {
  return [{ role: 'user', content: `Request ${index}: write a short story about a lighthouse keeper.` }];
}

function decodeRate(tokens: number, tFirst: number | undefined, tEnd: number): number {
  if (tFirst === undefined || tokens < 2 || tEnd <= tFirst) return Number.NaN;
  return ((tokens - 1) * 1000) / (tEnd - tFirst);
}

async function runPhase(run: Runner, requests: number, concurrency: number, firstIndex: number, budgetMs: number): Promise<Phase> {
  const samples: Sample[] = [];
  let failures = 0;
  let firstError: string | undefined;
  let next = 0;
  let stoppedEarly = false;
  const started = performance.now();
  const until = Math.min(Date.now() + budgetMs, softDeadline);
  await Promise.all(
    Array.from({ length: concurrency }, async (_, slot) => {
      while (next < requests) {
        if (Date.now() > until) {
          stoppedEarly = true;
          return;
        }
        const index = firstIndex + next;
        next += 1;
        try {
          samples.push(await run(index, slot));
        } catch (err) {
          failures += 1;
          firstError ??= err instanceof Error ? err.message : String(err);
        }
      }
    }),
  );
  const wallMs = performance.now() - started;
  const tokens = samples.reduce((s, x) => s + x.completionTokens, 0);
  return { samples, failures, firstError, wallMs, aggregateTps: (tokens * 1000) / wallMs, stoppedEarly };
}

function percentile(values: number[], p: number): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return (sorted[lo] ?? Number.NaN) + ((sorted[hi] ?? Number.NaN) - (sorted[lo] ?? Number.NaN)) * (rank - lo);
}

function fmt(n: number, digits = 1): string {
  if (!Number.isFinite(n)) return '—';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

// ---------------------------------------------------------------------------------------------
// Path 1: raw node-llama-cpp
// ---------------------------------------------------------------------------------------------

interface PathHandle {
  run: Runner;
  close(): Promise<void>;
  describe: string;
}

/** node-llama-cpp stop reasons in the API's words (as the engine maps them). */
const FINISH: Record<string, string> = {
  maxTokens: 'length',
  eogToken: 'stop',
  stopGenerationTrigger: 'stop',
  customStopTrigger: 'stop',
  abort: 'cancelled',
};

async function startRawDirect(modelPath: string, maxTokens: number): Promise<PathHandle> {
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.warn });
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  // The engine's defaults: context min(training context, 4096), `parallel` sequences, same threads.
  const trained = model.trainContextSize;
  const context = await model.createContext({
    contextSize: trained > 0 ? Math.min(trained, 4096) : 4096,
    sequences: PARALLEL,
    threads: THREADS,
  });
  const sequences = Array.from({ length: PARALLEL }, () => context.getSequence());
  const wrapper = resolveChatWrapper(model);
  // Rendered exactly as the engine renders a chat (llama-cpp.ts renderPrompt), before timing.
  const render = (messages: ChatMessage[]): { tokens: Token[]; stops: LlamaText[] } => {
    const { contextText, stopGenerationTriggers } = wrapper.generateContextState({ chatHistory: toChatHistory(messages) });
    const tokens = contextText.tokenize(model.tokenizer);
    const bos = model.tokens.bos;
    const strip = model.tokens.shouldPrependBosToken && bos !== null && tokens[0] === bos;
    return { tokens: strip ? tokens.slice(1) : tokens, stops: stopGenerationTriggers };
  };
  const run: Runner = async (index, slot) => {
    const sequence = sequences[slot];
    if (sequence === undefined) throw new Error(`no sequence for slot ${slot}`);
    const prompt = render(messagesFor(index));
    const completion = new LlamaCompletion({ contextSequence: sequence });
    const before = sequence.tokenMeter.usedOutputTokens;
    let tFirst: number | undefined;
    let text = '';
    const start = performance.now();
    try {
      const result = await completion.generateCompletionWithMeta(prompt.tokens, {
        maxTokens,
        temperature: 0,
        topK: 0,
        topP: 1,
        repeatPenalty: false,
        customStopTriggers: prompt.stops,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        onTextChunk: (chunk) => {
          if (chunk !== '' && tFirst === undefined) tFirst = performance.now();
          text += chunk;
        },
      });
      const tEnd = performance.now();
      const tokens = sequence.tokenMeter.usedOutputTokens - before;
      return {
        ttftMs: (tFirst ?? Number.NaN) - start,
        decodeTps: decodeRate(tokens, tFirst, tEnd),
        completionTokens: tokens,
        finish: FINISH[result.metadata.stopReason] ?? result.metadata.stopReason,
        text,
      };
    } finally {
      completion.dispose({ disposeSequence: false });
    }
  };
  return {
    run,
    describe: `node-llama-cpp ${llama.llamaCppRelease.release}, cpu, ${THREADS} threads, ${PARALLEL} sequences, ctx ${context.contextSize}, wrapper ${wrapper.wrapperName}`,
    async close() {
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Path 2: our engine in-process
// ---------------------------------------------------------------------------------------------

async function startEngineDirect(modelPath: string, maxTokens: number): Promise<PathHandle> {
  const logger = createLogger('bench-llama', 'warn', process.stderr);
  const engine = createLlamaCppEngine({ modelPath, gpu: 'cpu', threads: THREADS, parallel: PARALLEL }, { logger });
  await engine.start();
  const run: Runner = async (index) => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error('request timed out')), REQUEST_TIMEOUT_MS);
    let tFirst: number | undefined;
    let tEnd = Number.NaN;
    let text = '';
    let tokens = 0;
    let finish = 'none';
    const start = performance.now();
    try {
      const events = engine.generate(
        { requestId: `bench-${index}`, messages: messagesFor(index), maxTokens, temperature: 0, topP: 1, stop: [] },
        controller.signal,
      );
      for await (const e of events) {
        if (e.type === 'delta') {
          if (e.text !== '' && tFirst === undefined) tFirst = performance.now();
          text += e.text;
        } else {
          tEnd = performance.now();
          tokens = e.usage.completionTokens;
          finish = e.finishReason;
        }
      }
    } finally {
      clearTimeout(timer);
    }
    if (finish === 'cancelled') throw new Error('generation cancelled (timeout)');
    return { ttftMs: (tFirst ?? Number.NaN) - start, decodeTps: decodeRate(tokens, tFirst, tEnd), completionTokens: tokens, finish, text };
  };
  return { run, describe: engine.info().backend, close: () => engine.close() };
}

// ---------------------------------------------------------------------------------------------
// Path 3: the platform over HTTP (SSE)
// ---------------------------------------------------------------------------------------------

interface Chunk {
  choices?: Array<{ delta?: { content?: string }; finish_reason?: string | null }>;
  usage?: { completion_tokens?: number } | null;
  error?: { message?: string };
}

function streamChat(agent: Agent, url: URL, key: string, index: number, maxTokens: number): Promise<Sample> {
  const payload = JSON.stringify({
    model: 'bench',
    messages: messagesFor(index),
    stream: true,
    stream_options: { include_usage: true },
    temperature: 0,
    top_p: 1,
    max_tokens: maxTokens,
  });
  return new Promise<Sample>((resolve, reject) => {
    const start = performance.now();
    let tFirst: number | undefined;
    let tEnd = Number.NaN;
    let tokens = Number.NaN;
    let finish = 'none';
    let text = '';
    let buffer = '';
    let done = false;
    const req = request(
      url,
      {
        agent,
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      },
      (res) => {
        res.setEncoding('utf8');
        if (res.statusCode !== 200) {
          let body = '';
          res.on('data', (c: string) => (body += c));
          res.on('end', () => reject(new Error(`HTTP ${res.statusCode}: ${body.slice(0, 300)}`)));
          return;
        }
        res.on('data', (data: string) => {
          const now = performance.now();
          buffer += data;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const event = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            for (const line of event.split('\n')) {
              if (!line.startsWith('data: ')) continue;
              const body = line.slice(6);
              if (body === '[DONE]') {
                done = true;
                continue;
              }
              const chunk = JSON.parse(body) as Chunk;
              if (chunk.error) {
                reject(new Error(`stream error event: ${chunk.error.message ?? body}`));
                req.destroy();
                return;
              }
              const choice = chunk.choices?.[0];
              const content = choice?.delta?.content ?? '';
              if (content !== '') {
                tFirst ??= now;
                text += content;
              }
              if (choice?.finish_reason) {
                tEnd = now;
                finish = choice.finish_reason;
              }
              if (chunk.usage?.completion_tokens !== undefined) tokens = chunk.usage.completion_tokens;
            }
          }
        });
        res.on('end', () => {
          if (!done) return reject(new Error('stream ended without [DONE]'));
          resolve({ ttftMs: (tFirst ?? Number.NaN) - start, decodeTps: decodeRate(tokens, tFirst, tEnd), completionTokens: tokens, finish, text });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

interface PlatformHandle extends PathHandle {
  mode: string;
}

async function startPlatformProcesses(modelPath: string, tiersFile: string, maxTokens: number): Promise<PlatformHandle> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'xero-bench-llama-'));
  let platform: OurPlatform | undefined;
  const stop = async (): Promise<void> => {
    await platform?.target.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  cleanups.push(stop);
  try {
    // The same four processes as the gateway benchmark (bench/lib/targets.ts), with llama.cpp.
    platform = await startOurPlatform({
      root: ROOT,
      dir,
      tiersFile,
      capacity: PARALLEL,
      queueCapacity: 8,
      startTimeoutMs: Math.max(1_000, Math.min(120_000, softDeadline - Date.now())),
      label: 'through the platform',
      inferenceEnv: {
        INFERENCE_ENGINE: 'llama-cpp',
        LLAMA_MODEL: modelPath,
        LLAMA_MODELS_DIR: path.join(dir, 'models'),
        LLAMA_ALLOW_DOWNLOAD: 'false',
        LLAMA_FALLBACK_TINY: 'false',
        LLAMA_GPU: 'cpu',
        LLAMA_THREADS: String(THREADS),
      },
    });
    const key = String(platform.target.headers['authorization']).replace(/^Bearer /, '');
    const agent = new Agent({ keepAlive: true, maxSockets: PARALLEL });
    const url = new URL(platform.target.url);
    return {
      mode: 'separate processes (gateway, auth, quota, inference; bench/lib/targets.ts startOurPlatform)',
      describe: `4 processes on 127.0.0.1, INFERENCE_CAPACITY=${PARALLEL}, LLAMA_THREADS=${THREADS}, LOG_LEVEL=warn`,
      run: (index) => streamChat(agent, url, key, index, maxTokens),
      async close() {
        agent.destroy();
        cleanups = cleanups.filter((c) => c !== stop);
        await stop();
      },
    };
  } catch (err) {
    cleanups = cleanups.filter((c) => c !== stop);
    await stop();
    throw err;
  }
}

async function startPlatformInProcess(modelPath: string, tiersFile: string, maxTokens: number): Promise<PlatformHandle> {
  const { startPlatform } = await import('../test/helpers/platform.js');
  const logger = createLogger('bench-llama', 'warn', process.stderr);
  const engine = createLlamaCppEngine({ modelPath, gpu: 'cpu', threads: THREADS, parallel: PARALLEL }, { logger });
  const platform = await startPlatform({
    engines: [engine],
    workerEnv: { INFERENCE_CAPACITY: String(PARALLEL), INFERENCE_QUEUE_CAPACITY: '8' },
    gatewayEnv: { TIERS_FILE: tiersFile },
    quotaEnv: { TIERS_FILE: tiersFile },
  });
  const stop = (): Promise<void> => platform.stop();
  cleanups.push(stop);
  const agent = new Agent({ keepAlive: true, maxSockets: PARALLEL });
  const url = new URL(`${platform.baseUrl()}/chat/completions`);
  return {
    mode: 'in-process (test/helpers/platform.ts: one process, one event loop, debug logs captured in memory)',
    describe: `in-process platform, INFERENCE_CAPACITY=${PARALLEL}, threads ${THREADS}`,
    run: (index) => streamChat(agent, url, platform.demoKey, index, maxTokens),
    async close() {
      agent.destroy();
      cleanups = cleanups.filter((c) => c !== stop);
      await stop();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------------------------

type PathKey = 'raw' | 'engine' | 'platform';
const PATH_LABEL: Record<PathKey, string> = {
  raw: 'direct: raw node-llama-cpp',
  engine: 'direct: our engine (in-process)',
  platform: 'through the platform',
};

interface ModelRun {
  label: string;
  file: string;
  sizeBytes: number;
  maxTokens: number;
  note: string;
  phases: Map<string, Phase>; // `${path}:${concurrency}`
  describe: Map<PathKey, string>;
  texts: Map<PathKey, string>;
  errors: string[];
}

let platformMode = '';

/** Starts one path; a failure is recorded and the other paths go on. */
async function openPath(runModel: ModelRun, key: PathKey, start: () => Promise<PathHandle>): Promise<PathHandle | undefined> {
  if (Date.now() > softDeadline) {
    runModel.errors.push(`${PATH_LABEL[key]}: skipped (time budget)`);
    return undefined;
  }
  try {
    const handle = await start();
    runModel.describe.set(key, handle.describe);
    // Warm-up (discarded), and the greedy text for the cross-path check.
    for (let i = 0; i < WARMUP; i++) {
      const s = await handle.run(-1 - i, 0);
      if (i === 0) runModel.texts.set(key, s.text);
    }
    return handle;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    runModel.errors.push(`${PATH_LABEL[key]}: ${message.slice(0, 1500)}`);
    log(`${runModel.label} | ${PATH_LABEL[key]} failed to start: ${message.slice(0, 1500)}`);
    return undefined;
  }
}

function mergePhase(into: Phase | undefined, add: Phase): Phase {
  if (!into) return add;
  const tokens = (p: Phase): number => (p.aggregateTps * p.wallMs) / 1000;
  const wallMs = into.wallMs + add.wallMs;
  return {
    samples: [...into.samples, ...add.samples],
    failures: into.failures + add.failures,
    firstError: into.firstError ?? add.firstError,
    wallMs,
    aggregateTps: ((tokens(into) + tokens(add)) * 1000) / wallMs,
    stoppedEarly: into.stoppedEarly || add.stoppedEarly,
  };
}

/** Splits n into `parts` near-equal chunks, each a multiple of `step` where possible. */
function chunks(n: number, parts: number, step: number): number[] {
  const out: number[] = [];
  let left = n;
  for (let i = parts; i > 0; i--) {
    const size = i === 1 ? left : Math.min(left, Math.max(step, Math.round(left / i / step) * step));
    if (size > 0) out.push(size);
    left -= size;
  }
  return out;
}

async function benchModel(label: string, file: string, maxTokens: number, note: string, tiersFile: string): Promise<ModelRun> {
  const runModel: ModelRun = {
    label,
    file,
    sizeBytes: statSync(file).size,
    maxTokens,
    note,
    phases: new Map(),
    describe: new Map(),
    texts: new Map(),
    errors: [],
  };
  log(`${label}: ${file} (${fmt(runModel.sizeBytes / 1024 / 1024, 2)} MiB), max_tokens ${maxTokens}`);
  const handles = new Map<PathKey, PathHandle>();
  try {
    const starters: Array<[PathKey, () => Promise<PathHandle>]> = [
      ['raw', () => startRawDirect(file, maxTokens)],
      ['engine', () => startEngineDirect(file, maxTokens)],
      ['platform', () => startPlatformPath(file, tiersFile, maxTokens)],
    ];
    for (const [key, start] of starters) {
      const handle = await openPath(runModel, key, start);
      if (handle) handles.set(key, handle);
    }
    // All paths stay loaded (idle ones cost no CPU) and take turns in rounds with a rotating
    // order, so drifting load from other work on the host hits every path alike.
    const keys = [...handles.keys()];
    let index = 0;
    for (const concurrency of [1, PARALLEL]) {
      const sizes = chunks(REQUESTS, ROUNDS, concurrency);
      for (const [round, size] of sizes.entries()) {
        const shift = round % Math.max(1, keys.length);
        for (const key of [...keys.slice(shift), ...keys.slice(0, shift)]) {
          const handle = handles.get(key);
          if (!handle) continue;
          const phaseKey = `${key}:${concurrency}`;
          const sofar = runModel.phases.get(phaseKey);
          const left = PHASE_MS - (sofar?.wallMs ?? 0);
          if (Date.now() > softDeadline || left <= 0) {
            if (sofar) sofar.stoppedEarly = true;
            continue;
          }
          runModel.phases.set(phaseKey, mergePhase(sofar, await runPhase(handle.run, size, concurrency, index, left)));
        }
        index += size;
      }
      for (const key of keys) {
        const phase = runModel.phases.get(`${key}:${concurrency}`);
        if (!phase) {
          runModel.errors.push(`${PATH_LABEL[key]} c=${concurrency}: skipped (time budget)`);
          continue;
        }
        log(
          `${label} | ${PATH_LABEL[key]} | c=${concurrency}: ${phase.samples.length} ok, ${phase.failures} failed, ` +
            `TTFT p50 ${fmt(percentile(phase.samples.map((s) => s.ttftMs), 50), 2)} ms, decode p50 ${fmt(percentile(phase.samples.map((s) => s.decodeTps), 50))} tok/s` +
            (phase.firstError ? ` (first error: ${phase.firstError})` : ''),
        );
      }
    }
  } finally {
    for (const [key, handle] of [...handles.entries()].reverse()) {
      await handle.close().catch((err: unknown) => log(`${PATH_LABEL[key]}: close failed: ${String(err)}`));
    }
  }
  return runModel;
}

async function startPlatformPath(modelPath: string, tiersFile: string, maxTokens: number): Promise<PathHandle> {
  let handle: PlatformHandle;
  if (flags['in-process']) {
    handle = await startPlatformInProcess(modelPath, tiersFile, maxTokens);
  } else {
    try {
      handle = await startPlatformProcesses(modelPath, tiersFile, maxTokens);
    } catch (err) {
      if (Date.now() > softDeadline) throw err;
      log(`separate processes failed (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); falling back to in-process`);
      handle = await startPlatformInProcess(modelPath, tiersFile, maxTokens);
      handle.mode += ' — FALLBACK after the separate processes failed';
    }
  }
  if (platformMode !== '' && platformMode !== handle.mode) platformMode += `; ${handle.mode}`;
  else platformMode = handle.mode;
  return handle;
}

function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${fmt(a / b, 2)}×` : '—';
}

function signed(n: number, digits: number): string {
  return Number.isFinite(n) ? `${n >= 0 ? '+' : '−'}${fmt(Math.abs(n), digits)}` : '—';
}

function report(models: ModelRun[], command: string, loads: number[]): string {
  const out: string[] = [];
  const ttft = (p: Phase | undefined, q: number): number => percentile(p?.samples.map((s) => s.ttftMs) ?? [], q);
  const tps = (p: Phase | undefined, q: number): number => percentile(p?.samples.map((s) => s.decodeTps) ?? [], q);
  out.push(`Command: \`${command}\``);
  out.push('');
  out.push(
    `Host: ${os.cpus().length} vCPU ${os.cpus()[0]?.model ?? ''}, Node ${process.version}, load average (1 min) ${loads.map((l) => fmt(l, 2)).join(' → ')}; ` +
      `threads ${THREADS}, ${PARALLEL} sequences, temperature 0, ${REQUESTS} requests per phase after ${WARMUP} warm-up requests.`,
  );
  out.push(`Platform path: ${platformMode || 'not run'}.`);
  out.push('');
  out.push('| model | path | concurrency | requests | TTFT p50 (ms) | TTFT p90 (ms) | decode tok/s p50 | decode tok/s p10 | aggregate tok/s |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const m of models) {
    for (const key of ['raw', 'engine', 'platform'] as const) {
      for (const c of [1, PARALLEL]) {
        const p = m.phases.get(`${key}:${c}`);
        if (!p) continue;
        const requests = `${p.samples.length}${p.failures ? ` (+${p.failures} failed)` : ''}${p.stoppedEarly ? ' ⏱' : ''}`;
        out.push(
          `| ${m.label} | ${PATH_LABEL[key]} | ${c} | ${requests} | ${fmt(ttft(p, 50), 2)} | ${fmt(ttft(p, 90), 2)} | ` +
            `${fmt(tps(p, 50))} | ${fmt(tps(p, 10))} | ${fmt(p.aggregateTps)} |`,
        );
      }
    }
  }
  out.push('');
  out.push('Platform / direct (p50 over p50; TTFT: higher = slower, decode: lower = slower):');
  out.push('');
  out.push(
    '| model | concurrency | TTFT platform/raw | TTFT platform/engine | added TTFT vs raw (ms) | decode platform/raw | decode platform/engine | added time per token vs raw (ms) |',
  );
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const m of models) {
    for (const c of [1, PARALLEL]) {
      const raw = m.phases.get(`raw:${c}`);
      const eng = m.phases.get(`engine:${c}`);
      const plat = m.phases.get(`platform:${c}`);
      if (!plat) continue;
      out.push(
        `| ${m.label} | ${c} | ${ratio(ttft(plat, 50), ttft(raw, 50))} | ${ratio(ttft(plat, 50), ttft(eng, 50))} | ` +
          `${signed(ttft(plat, 50) - ttft(raw, 50), 2)} | ${ratio(tps(plat, 50), tps(raw, 50))} | ${ratio(tps(plat, 50), tps(eng, 50))} | ` +
          `${signed(1000 / tps(plat, 50) - 1000 / tps(raw, 50), 3)} |`,
      );
    }
  }
  out.push('');
  for (const m of models) {
    out.push(`- **${m.label}**: \`${m.file}\` (${fmt(m.sizeBytes / 1024 / 1024, 2)} MiB), max_tokens ${m.maxTokens}. ${m.note}`);
    const finishes = new Set<string>();
    const tokens = new Set<number>();
    for (const p of m.phases.values()) {
      for (const s of p.samples) {
        finishes.add(s.finish);
        tokens.add(s.completionTokens);
      }
    }
    out.push(`  - finish reasons seen: ${[...finishes].join(', ') || '—'}; completion tokens per request: ${[...tokens].sort((a, b) => a - b).join(', ') || '—'}.`);
    const texts = [...m.texts.entries()];
    const distinct = new Set(texts.map(([, t]) => t));
    if (texts.length > 1) {
      out.push(
        distinct.size === 1
          ? `  - same greedy text on all ${texts.length} paths (${JSON.stringify(texts[0]?.[1]?.slice(0, 40) ?? '')}${(texts[0]?.[1]?.length ?? 0) > 40 ? '…' : ''}).`
          : `  - ⚠ greedy text DIFFERS between paths: ${texts.map(([k, t]) => `${k}=${JSON.stringify(t.slice(0, 40))}`).join(', ')}`,
      );
    }
    for (const [k, d] of m.describe) out.push(`  - ${PATH_LABEL[k]}: ${d}`);
    for (const e of m.errors) out.push(`  - ⚠ ${e.split('\n')[0]}`);
  }
  out.push('');
  out.push(
    'TTFT = request start → first non-empty content delta at the client (raw: the prompt is rendered before the clock starts). ' +
      'Decode tok/s = (completion tokens − 1) / (end of generation − first content), per request; p10 is the slow tail. ' +
      'Added time per token = 1000/decode p50 (platform) − 1000/decode p50 (raw): the per-token cost of the platform path, ' +
      'which matters less the slower the model decodes. ' +
      'Aggregate = completion tokens / wall time of the measured requests. All paths stay loaded and take turns in ' +
      `${ROUNDS} rounds per concurrency with a rotating order, so they never run at the same time, but other work on the host ` +
      'competes with all of them (see the load average). ⏱ = stopped by the time budget before all requests ran.',
  );
  return out.join('\n');
}

/** Replaces (or appends) our section of docs/BENCHMARKS.md; never touches anything else. */
function writeDocs(section: string): void {
  if (!existsSync(DOCS_FILE)) {
    log(`${DOCS_FILE} does not exist; not writing`);
    return;
  }
  const current = readFileSync(DOCS_FILE, 'utf8');
  const body = `${DOCS_HEADING}\n\n${section}\n`;
  const start = current.indexOf(`\n${DOCS_HEADING}\n`);
  let next: string;
  if (start < 0) {
    next = `${current.trimEnd()}\n\n${body}`;
  } else {
    const after = current.indexOf('\n## ', start + DOCS_HEADING.length + 1);
    next = `${current.slice(0, start + 1)}${body}${after < 0 ? '' : `\n${current.slice(after + 1)}`}`;
  }
  writeFileSync(DOCS_FILE, next);
  log(`wrote the "${DOCS_HEADING}" section of ${path.relative(ROOT, DOCS_FILE)}`);
}

async function main(): Promise<void> {
  const command = `node --import tsx bench/llama.ts${process.argv.length > 2 ? ` ${process.argv.slice(2).join(' ')}` : ''}`;
  const loads = [os.loadavg()[0] ?? Number.NaN];
  const work = mkdtempSync(path.join(os.tmpdir(), 'xero-bench-llama-'));
  cleanups.push(async () => rmSync(work, { recursive: true, force: true }));
  const tiersFile = unthrottledTiers();
  cleanups.push(async () => rmSync(path.dirname(tiersFile), { recursive: true, force: true }));
  const models: ModelRun[] = [];
  if (!flags['no-tiny']) {
    const tiny = path.join(work, 'xerotier-tiny-successor.gguf');
    await writeTinyGguf(tiny);
    const maxTokens = Math.min(MAX_TOKENS, TINY_MAX_TOKENS);
    const note =
      MAX_TOKENS > TINY_MAX_TOKENS
        ? `Its greedy reply is ${TINY_REPLY_CHARS} characters then EOS, so --max-tokens ${MAX_TOKENS} is capped at ${TINY_MAX_TOKENS} for it (every request stops on length).`
        : `Its greedy reply is ${TINY_REPLY_CHARS} characters then EOS; max_tokens ${maxTokens} stops before it.`;
    models.push(await benchModel('tiny (generated)', tiny, maxTokens, note, tiersFile));
  }
  if (USER_MODEL !== undefined) {
    models.push(
      await benchModel(path.basename(USER_MODEL), USER_MODEL, MAX_TOKENS, 'A reply that ends on EOS before max_tokens counts the EOS token (as usage does on every path).', tiersFile),
    );
  }
  loads.push(os.loadavg()[0] ?? Number.NaN);
  await cleanupAll();
  const section = report(models, command, loads);
  process.stdout.write(`\n${section}\n`);
  if (flags['write-docs']) writeDocs(section);
  const measured = models.some((m) => m.phases.size > 0);
  process.exitCode = measured ? 0 : 1;
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench/llama.ts failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  await cleanupAll();
  process.exitCode = 1;
}
// node-llama-cpp and the HTTP agent may keep handles; don't wait for them once the report is out.
process.exit();
