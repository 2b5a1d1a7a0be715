/**
 * Pick among scored candidates: with probability `exploration` any candidate, uniformly (so a
 * worker whose averages went bad while it was slow is tried now and then, and its recovery is
 * seen); otherwise a weighted random choice among the candidates within `band` of the best score,
 * each weighted by how far above the band's floor it is (the best is the most likely; near-ties
 * share the traffic instead of all piling onto one worker between two status reports).
 */
import type { Random } from './random.js';

export interface PickOptions {
  exploration: number;
  band: number;
}

export function weightedPick(scores: readonly number[], random: Random, options: PickOptions): number {
  if (scores.length === 0) throw new RangeError('no candidates');
  if (scores.length === 1) return 0;
  if (random() < options.exploration) return Math.min(scores.length - 1, Math.floor(random() * scores.length));
  const best = Math.max(...scores);
  const floor = best - options.band;
  // A small constant keeps every band member possible (the best alone when the band is 0).
  const weights = scores.map((s) => (s >= floor ? s - floor + 1e-6 : 0));
  const total = weights.reduce((a, b) => a + b, 0);
  let r = random() * total;
  for (let i = 0; i < weights.length; i++) {
    r -= weights[i]!;
    if (r < 0 && weights[i]! > 0) return i;
  }
  return scores.indexOf(best);
}
