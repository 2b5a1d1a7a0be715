/**
 * Flags of bench/llama.ts, read once by its entry.
 *
 *   --model /path/to/model.gguf  also measure this GGUF (after the generated tiny model)
 *   --requests 20                requests per path × concurrency (after the warm-up)
 *   --max-tokens 64              max_tokens per request (capped for the tiny model)
 *   --threads 1                  llama.cpp threads on every path
 *   --rounds N                   rounds per concurrency (default: one per request)
 *   --phase-seconds 45           time budget per path × concurrency
 *   --timeout-seconds N          whole run (default 170 with the tiny model only, 1070 with --model)
 *   --in-process                 the platform path in this process (test/helpers/platform.ts)
 *   --no-tiny                    skip the tiny model (needs --model)
 *   --write-docs                 replace the llama.cpp section of docs/BENCHMARKS.md
 *
 * A smoke run (one short round, only to check that it runs end to end):
 *   node --import tsx bench/llama.ts --requests 2 --rounds 1 --phase-seconds 5 --timeout-seconds 90
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

export interface LlamaFlags {
  requests: number;
  maxTokens: number;
  threads: number;
  phaseMs: number;
  rounds: number;
  /** --model, resolved; undefined without it. */
  userModel: string | undefined;
  tiny: boolean;
  inProcess: boolean;
  timeoutMs: number;
  writeDocs: boolean;
  /** How this run was started, for the report. */
  command: string;
}

/** Thrown for a bad flag; the entry prints its message (no stack) and exits 2. */
export class FlagError extends Error {}

function intFlag(name: string, value: string | undefined, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new FlagError(`--${name} must be an integer in ${min}..${max} (got ${String(value)})`);
  return n;
}

export function parseLlamaFlags(argv: string[]): LlamaFlags {
  const { values } = parseArgs({
    args: argv,
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
  const requests = intFlag('requests', values.requests, 1, 10_000);
  const userModel = values.model === undefined ? undefined : path.resolve(values.model);
  if (userModel !== undefined && !existsSync(userModel)) throw new FlagError(`--model: no such file: ${userModel}`);
  if (values['no-tiny'] && userModel === undefined) throw new FlagError('--no-tiny needs --model');
  return {
    requests,
    maxTokens: intFlag('max-tokens', values['max-tokens'], 1, 100_000),
    threads: intFlag('threads', values.threads, 1, 1024),
    phaseMs: intFlag('phase-seconds', values['phase-seconds'], 1, 3600) * 1000,
    // Default: one round per request, i.e. the paths alternate request by request (pairs at concurrency 2).
    rounds: Math.min(requests, intFlag('rounds', values.rounds ?? String(requests), 1, 10_000)),
    userModel,
    tiny: !values['no-tiny'],
    inProcess: values['in-process'],
    // Whole run: < 3 min with the tiny model only; a user model gets 15 min more unless told.
    timeoutMs: intFlag('timeout-seconds', values['timeout-seconds'] ?? (userModel === undefined ? '170' : '1070'), 10, 24 * 3600) * 1000,
    writeDocs: values['write-docs'],
    command: `node --import tsx bench/llama.ts${argv.length > 0 ? ` ${argv.join(' ')}` : ''}`,
  };
}
