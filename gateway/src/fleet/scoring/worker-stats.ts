/**
 * Recent speed of one worker, from the requests it finished for this gateway: exponentially
 * weighted moving averages (each sample moves an average by `alpha` of the difference, so a
 * slowdown shows within a few requests). Time to first token is kept apart for prompts the
 * gateway expected to hit the worker's prefix cache and for the rest, and only from requests
 * that found a free slot (a queued request's TTFT measures the queue, which the scorer estimates
 * from the worker's load instead), and for all of them together. Decode rate and answer length give the time a request holds
 * a slot.
 */
export interface Sample {
  ttftMs: number;
  /** The request found a free slot (its TTFT is the worker's speed, not its queue). */
  unqueued: boolean;
  /** The gateway expected a prefix-cache hit for it. */
  expectedHit: boolean;
  tokens: number;
  decodeMs: number;
  at: number;
}

export interface WorkerStats {
  observe(sample: Sample): void;
  /** TTFT of prompts expected to hit (or to miss) the prefix cache; undefined until that kind is seen. */
  ttftMs(expectedHit: boolean): number | undefined;
  /** TTFT of all requests that found a free slot. */
  averageTtftMs(): number | undefined;
  tokensPerSecond(): number | undefined;
  tokensPerRequest(): number | undefined;
  /** When the last sample arrived (undefined: never). */
  lastSampleAt(): number | undefined;
  samples(): number;
}

/**
 * `restartAfterMs`: a sample after this long without one starts the averages over (the worker
 * was avoided, e.g. while slow: what it did then says little about it now; an exploration probe
 * that finds it recovered brings it back at once).
 */
export function createWorkerStats(alpha: number, restartAfterMs: number): WorkerStats {
  // [expected miss, expected hit, all]
  const ttft: Array<number | undefined> = [undefined, undefined, undefined];
  let tps: number | undefined;
  let tokens: number | undefined;
  let last: number | undefined;
  let n = 0;
  const ewma = (prev: number | undefined, x: number): number => (prev === undefined ? x : prev + alpha * (x - prev));
  const feed = (k: number, s: Sample, restart: boolean): void => {
    // A queued request's TTFT (wait + prefill) is only an upper bound of the prefill: it may
    // lower a known average, never start one (a worker that slows down while always queued
    // shows in its decode rate). After a silence it does start one: it replaces what is known
    // with a pessimistic figure that the next unqueued sample corrects, where dropping it would
    // leave the worker without any figure, scored like a new one (first in line) while slow.
    const known = restart ? undefined : ttft[k];
    if (s.unqueued || restart) ttft[k] = ewma(known, s.ttftMs);
    else if (known !== undefined && s.ttftMs < known) ttft[k] = ewma(known, s.ttftMs);
  };
  return {
    observe(s) {
      const restart = last !== undefined && s.at - last >= restartAfterMs;
      if (restart) {
        tps = undefined;
        tokens = undefined;
      }
      n += 1;
      last = s.at;
      // The other kind (hit or miss) restarts too: its old figure says little about the worker now.
      if (restart) ttft[s.expectedHit ? 0 : 1] = undefined;
      feed(s.expectedHit ? 1 : 0, s, restart);
      feed(2, s, restart);
      tokens = ewma(tokens, s.tokens);
      if (s.tokens > 1 && s.decodeMs > 0) tps = ewma(tps, ((s.tokens - 1) * 1000) / s.decodeMs);
    },
    ttftMs: (hit) => ttft[hit ? 1 : 0],
    averageTtftMs: () => ttft[2],
    tokensPerSecond: () => tps,
    tokensPerRequest: () => tokens,
    lastSampleAt: () => last,
    samples: () => n,
  };
}
