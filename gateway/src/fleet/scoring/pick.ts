/**
 * Pick among scored candidates (score = expected TTFT in ms, lower is better): a weighted random
 * choice among the candidates within `band` of the best (cost ≤ best × (1 + band) + 1 ms), each
 * weighted by 1 / cost, so near-ties share the traffic instead of all piling onto one worker
 * between two feedback samples. With probability `exploration`, a candidate the gateway has not
 * heard from (silence level ≥ 1, silence.ts; the stalest) gets the request instead: a worker
 * avoided while it was slow is tried now and then, so its recovery is seen, and a fleet where
 * every worker serves spends nothing on exploration.
 */
import type { Random } from './random.js';

export interface PickOptions {
  exploration: number;
  band: number;
}

/** `stale[i]`: candidate i's silence level (silence.ts; Infinity: never heard from), for exploration. */
export function weightedPick(costs: readonly number[], stale: readonly number[], random: Random, options: PickOptions): number {
  if (costs.length === 0) throw new RangeError('no candidates');
  if (costs.length === 1) return 0;
  if (options.exploration > 0 && random() < options.exploration) {
    let stalest = -1;
    for (let i = 0; i < stale.length; i++) {
      if (stale[i]! >= 1 && (stalest < 0 || stale[i]! > stale[stalest]!)) stalest = i;
    }
    if (stalest >= 0) return stalest;
  }
  const best = Math.min(...costs);
  const ceiling = best * (1 + options.band) + 1;
  const weights = costs.map((c) => (c <= ceiling ? 1 / (c + 1) : 0));
  const total = weights.reduce((a, b) => a + b, 0);
  let r = random() * total;
  for (let i = 0; i < weights.length; i++) {
    if (weights[i]! === 0) continue;
    r -= weights[i]!;
    if (r < 0) return i;
  }
  return costs.indexOf(best);
}
