/**
 * The score of each candidate, in [0, 1] (higher is better): a weighted mean of five features,
 * each in [0, 1] and relative to the other candidates where that makes sense.
 *
 * - load:       1 / (1 + occupancy), occupancy = requests running or queued ÷ capacity
 *               (idle 1, full 0.5, a full queue behind a full worker less);
 * - ttft:       fastest recent time to first token among the candidates ÷ this worker's
 *               (feedback average, else the worker's own report; unknown counts as fastest, so a
 *               new worker is tried);
 * - throughput: this worker's recent decode tokens/s ÷ the best candidate's (unknown = best);
 * - prefix:     share of the prompt's prefix blocks this worker was recently sent (its likely KV
 *               cache hit);
 * - owner:      1 when the worker belongs to the calling project (private workers first).
 */
import type { Candidate, RoutingHint } from './candidate.js';

export interface ScoreWeights {
  load: number;
  ttft: number;
  throughput: number;
  prefix: number;
  owner: number;
}

/** Per-candidate numbers the pipeline keeps (feedback and prefix memory). */
export interface Observed {
  ttftMs: number | undefined;
  tokensPerSecond: number | undefined;
  /** Leading prefix blocks of this request the worker's memory holds. */
  prefixMatched: number;
}

export interface Features {
  load: number;
  ttft: number;
  throughput: number;
  prefix: number;
  owner: number;
}

export function features(candidates: readonly Candidate[], observed: readonly Observed[], hint: RoutingHint): Features[] {
  const ttfts = candidates.map((c, i) => observed[i]!.ttftMs ?? c.reportedTtftMs);
  const known = ttfts.filter((t): t is number => t !== undefined && t > 0);
  const fastest = known.length > 0 ? Math.min(...known) : undefined;
  const rates = observed.map((o) => o.tokensPerSecond).filter((r): r is number => r !== undefined && r > 0);
  const best = rates.length > 0 ? Math.max(...rates) : undefined;
  const blocks = hint.prefixBlocks.length;
  return candidates.map((c, i) => {
    const t = ttfts[i];
    const r = observed[i]!.tokensPerSecond;
    return {
      load: 1 / (1 + c.inFlight / Math.max(1, c.capacity)),
      ttft: fastest === undefined || t === undefined || t <= 0 ? 1 : fastest / t,
      throughput: best === undefined || r === undefined || r <= 0 ? 1 : r / best,
      prefix: blocks === 0 ? 0 : observed[i]!.prefixMatched / blocks,
      owner: c.owner !== undefined && c.owner === hint.project ? 1 : 0,
    };
  });
}

export function scores(all: readonly Features[], w: ScoreWeights): number[] {
  const total = w.load + w.ttft + w.throughput + w.prefix + w.owner;
  if (total <= 0) return all.map(() => 0);
  return all.map(
    (f) => (w.load * f.load + w.ttft * f.ttft + w.throughput * f.throughput + w.prefix * f.prefix + w.owner * f.owner) / total,
  );
}
