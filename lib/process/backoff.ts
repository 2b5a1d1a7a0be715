/**
 * Restart delay of a crashed child: exponential from `initialMs`, doubling per consecutive crash
 * up to `maxMs`. A child that stayed up for `resetAfterMs` before crashing counts as healthy
 * again, so its next crash starts over at `initialMs`.
 */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 250, maxMs: 10_000, resetAfterMs: 30_000 };

/** Delay before restart number `crashes` (1 = the first crash of a streak). */
export function restartDelay(crashes: number, policy: BackoffPolicy): number {
  const exponent = Math.max(0, crashes - 1);
  return Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(exponent, 30));
}

/** The crash count of the streak after one more crash of a child that ran for `uptimeMs`. */
export function nextCrashCount(previous: number, uptimeMs: number, policy: BackoffPolicy): number {
  return uptimeMs >= policy.resetAfterMs ? 1 : previous + 1;
}
