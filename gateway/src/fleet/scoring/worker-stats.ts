/**
 * Recent speed of one worker, from the requests it finished for this gateway: exponentially
 * weighted moving averages of time to first token and of decode tokens per second. Each finished
 * request moves the average by `alpha` of the difference, so a slowdown shows within a few
 * requests and an old sample's weight halves every ln(2)/alpha requests.
 */
export interface WorkerStats {
  observeTtft(ms: number): void;
  observeTokensPerSecond(rate: number): void;
  ttftMs(): number | undefined;
  tokensPerSecond(): number | undefined;
  samples(): number;
}

export function createWorkerStats(alpha: number): WorkerStats {
  let ttft: number | undefined;
  let tps: number | undefined;
  let n = 0;
  const ewma = (prev: number | undefined, x: number): number => (prev === undefined ? x : prev + alpha * (x - prev));
  return {
    observeTtft(ms) {
      ttft = ewma(ttft, ms);
      n += 1;
    },
    observeTokensPerSecond(rate) {
      tps = ewma(tps, rate);
    },
    ttftMs: () => ttft,
    tokensPerSecond: () => tps,
    samples: () => n,
  };
}
