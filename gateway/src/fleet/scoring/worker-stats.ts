/**
 * Recent speed of one worker, from the requests it served for this gateway: exponentially
 * weighted moving averages (each sample moves an average by `alpha` of the difference, so a
 * slowdown shows within a few requests). Two kinds of sample, each taken once per request when
 * it is known: the time to first token when the first token arrives, the decode rate and answer
 * length when the request ends. Time to first token is kept apart for prompts the gateway
 * expected to hit the worker's prefix cache and for the rest, and only from requests that found
 * a free slot (a queued request's TTFT measures the queue, which the scorer estimates from the
 * worker's load instead), and for all of them together. Decode rate and answer length give the
 * time a request holds a slot.
 */
export interface FirstTokenSample {
  ttftMs: number;
  /** The request found a free slot (its TTFT is the worker's speed, not its queue). */
  unqueued: boolean;
  /** The gateway expected a prefix-cache hit for it. */
  expectedHit: boolean;
  /** The worker was not heard from before this sample (silence.ts): its figures start over. */
  afterSilence: boolean;
  at: number;
}

export interface EndSample {
  /** Completion tokens relayed. */
  tokens: number;
  /** Time from the first token to the last. */
  decodeMs: number;
  at: number;
}

export interface WorkerStats {
  firstToken(sample: FirstTokenSample): void;
  ended(sample: EndSample): void;
  /** TTFT of prompts expected to hit (or to miss) the prefix cache; undefined until that kind is seen. */
  ttftMs(expectedHit: boolean): number | undefined;
  /** Which kind's TTFT figure (expected hit or miss) was fed last; undefined until one is. */
  newerKind(): 'hit' | 'miss' | undefined;
  /** TTFT of all requests that found a free slot. */
  averageTtftMs(): number | undefined;
  tokensPerSecond(): number | undefined;
  /**
   * The best the worker has done: the highest its decode-rate average and the lowest its hit
   * and miss TTFT figures have been (kept through silences: what it can do when healthy).
   */
  best(): { tokensPerSecond: number | undefined; ttftHitMs: number | undefined; ttftMissMs: number | undefined };
  tokensPerRequest(): number | undefined;
  /** When the last sample of either kind arrived (undefined: never). */
  lastSampleAt(): number | undefined;
  /** First-token samples taken. */
  samples(): number;
}

/**
 * A sample `afterSilence` starts its figures over (the worker was avoided, e.g. while slow: what
 * it did then says little about it now; an exploration probe that finds it recovered brings it
 * back at once). Only what the new sample measures starts over: its kind's TTFT (hit or miss) and
 * the overall one from this sample, the decode rate from the next request's end. The other kind's
 * TTFT is kept as the older figure (the scorer takes it no lower than the newer one implies) and
 * the answer length, a property of the traffic, is kept as it is: a worker that wakes up knowing
 * nothing but one TTFT would have its queue counted without decode time.
 */
export function createWorkerStats(alpha: number): WorkerStats {
  // [expected miss, expected hit, all]
  const ttft: Array<number | undefined> = [undefined, undefined, undefined];
  let newer: 'hit' | 'miss' | undefined;
  let tps: number | undefined;
  let peak: number | undefined;
  // Lowest TTFT figures: [expected miss, expected hit].
  const lowest: Array<number | undefined> = [undefined, undefined];
  let tokens: number | undefined;
  let last: number | undefined;
  /** The next decode-rate sample replaces the figure (a silence restarted the worker's figures). */
  let tpsStale = false;
  let n = 0;
  const ewma = (prev: number | undefined, x: number): number => (prev === undefined ? x : prev + alpha * (x - prev));
  /** Starts over what a first-token sample of kind `k` measures after a silence; true if it did. */
  const restartIfSilent = (s: FirstTokenSample, k: number): boolean => {
    const restart = last !== undefined && s.afterSilence;
    last = s.at;
    if (restart) {
      ttft[k] = undefined;
      ttft[2] = undefined;
      tpsStale = true;
    }
    return restart;
  };
  const feed = (k: number, s: FirstTokenSample, restart: boolean): void => {
    // A queued request's TTFT (wait + prefill) is only an upper bound of the prefill: it may
    // lower a known average, never start one (a worker that slows down while always queued
    // shows in its decode rate). After a silence it does start one: it replaces what is known
    // with a pessimistic figure that the next unqueued sample corrects, where dropping it would
    // leave the worker without any figure, scored like a new one (first in line) while slow.
    const known = ttft[k];
    if (s.unqueued || restart) ttft[k] = ewma(known, s.ttftMs);
    else if (known !== undefined && s.ttftMs < known) ttft[k] = ewma(known, s.ttftMs);
    else return;
    if (k < 2) {
      newer = k === 1 ? 'hit' : 'miss';
      lowest[k] = Math.min(lowest[k] ?? Number.POSITIVE_INFINITY, ttft[k]!);
    }
  };
  return {
    firstToken(s) {
      const k = s.expectedHit ? 1 : 0;
      const restart = restartIfSilent(s, k);
      n += 1;
      feed(k, s, restart);
      feed(2, s, restart);
    },
    ended(s) {
      // Never a restart: the request's own first token, heard before, restarted what was stale
      // (an end after a long decode is not a silence, and must not wipe the TTFT just taken).
      last = s.at;
      tokens = ewma(tokens, s.tokens);
      if (s.tokens > 1 && s.decodeMs > 0) {
        const rate = ((s.tokens - 1) * 1000) / s.decodeMs;
        tps = tpsStale ? rate : ewma(tps, rate);
        tpsStale = false;
        peak = peak === undefined ? tps : Math.max(peak, tps);
      }
    },
    ttftMs: (hit) => ttft[hit ? 1 : 0],
    newerKind: () => newer,
    averageTtftMs: () => ttft[2],
    tokensPerSecond: () => tps,
    best: () => ({ tokensPerSecond: peak, ttftHitMs: lowest[1], ttftMissMs: lowest[0] }),
    tokensPerRequest: () => tokens,
    lastSampleAt: () => last,
    samples: () => n,
  };
}
