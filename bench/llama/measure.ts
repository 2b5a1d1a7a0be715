/**
 * What bench/llama.ts measures per request (Sample) and per path × concurrency (Phase), and the
 * loop that runs a number of requests at a given concurrency against one path.
 *
 *  - TTFT = request start → first non-empty content delta;
 *  - decode tok/s = (completion tokens − 1) / (last token time − first token time).
 */
import type { ChatMessage } from '../../services/inference/src/engines/engine.js';

/** Sequences per context on the direct paths, INFERENCE_CAPACITY on the platform path. */
export const PARALLEL = 2;
/** Discarded requests per path before measuring. */
export const WARMUP = 2;
export const REQUEST_TIMEOUT_MS = 120_000;

export interface Sample {
  ttftMs: number;
  /** NaN when fewer than 2 tokens or no time between first and last. */
  decodeTps: number;
  completionTokens: number;
  finish: string;
  text: string;
}

/** One request: `index` numbers the prompt, `slot` is the concurrent lane (raw path: its sequence). */
export type Runner = (index: number, slot: number) => Promise<Sample>;

/** One way of serving the request (raw node-llama-cpp, our engine, the platform). */
export interface PathHandle {
  run: Runner;
  close(): Promise<void>;
  describe: string;
}

export interface Phase {
  samples: Sample[];
  failures: number;
  firstError: string | undefined;
  wallMs: number;
  /** Sum of completion tokens / wall time of the phase. */
  aggregateTps: number;
  stoppedEarly: boolean;
}

export function messagesFor(index: number): ChatMessage[] {
  return [{ role: 'user', content: `Request ${index}: write a short story about a lighthouse keeper.` }];
}

export function decodeRate(tokens: number, tFirst: number | undefined, tEnd: number): number {
  if (tFirst === undefined || tokens < 2 || tEnd <= tFirst) return Number.NaN;
  return ((tokens - 1) * 1000) / (tEnd - tFirst);
}

/**
 * Runs `requests` requests (prompts numbered from firstIndex) with `concurrency` lanes; stops
 * starting new ones after budgetMs or at `deadline` (Date.now() time).
 */
export async function runPhase(
  run: Runner,
  options: { requests: number; concurrency: number; firstIndex: number; budgetMs: number; deadline: number },
): Promise<Phase> {
  const samples: Sample[] = [];
  let failures = 0;
  let firstError: string | undefined;
  let next = 0;
  let stoppedEarly = false;
  const started = performance.now();
  const until = Math.min(Date.now() + options.budgetMs, options.deadline);
  await Promise.all(
    Array.from({ length: options.concurrency }, async (_, slot) => {
      while (next < options.requests) {
        if (Date.now() > until) {
          stoppedEarly = true;
          return;
        }
        const index = options.firstIndex + next;
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

/** Two phases of the same path × concurrency (different rounds) as one. */
export function mergePhase(into: Phase | undefined, add: Phase): Phase {
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
export function chunks(n: number, parts: number, step: number): number[] {
  const out: number[] = [];
  let left = n;
  for (let i = parts; i > 0; i--) {
    const size = i === 1 ? left : Math.min(left, Math.max(step, Math.round(left / i / step) * step));
    if (size > 0) out.push(size);
    left -= size;
  }
  return out;
}
