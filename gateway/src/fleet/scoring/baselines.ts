/**
 * The two reference strategies the routing benchmark compares against (selectable with
 * ROUTING_STRATEGY): round-robin, and least-loaded (the gateway's earlier rule: lowest
 * occupancy, then the lowest reported time to first token, then the list order).
 */
import type { Candidate } from './candidate.js';

export interface RoundRobin {
  next(candidates: readonly Candidate[]): number;
}

/** Cycles through the candidates in order (the same list gives each one turn in n picks). */
export function createRoundRobin(): RoundRobin {
  let turn = 0;
  return {
    next(candidates) {
      const i = turn % candidates.length;
      turn = (turn + 1) % 1_000_000_007;
      return i;
    },
  };
}

export function leastLoaded(candidates: readonly Candidate[]): number {
  let best = 0;
  for (let i = 1; i < candidates.length; i++) {
    const a = candidates[i]!;
    const b = candidates[best]!;
    const la = a.inFlight / Math.max(1, a.capacity);
    const lb = b.inFlight / Math.max(1, b.capacity);
    if (la < lb || (la === lb && (a.reportedTtftMs ?? 0) < (b.reportedTtftMs ?? 0))) best = i;
  }
  return best;
}
