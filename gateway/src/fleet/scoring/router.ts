/**
 * The routing pipeline after the fleet's eligibility filter: score → pick, and the feedback that
 * keeps the scores current. One router per gateway process (built by the composition root and
 * handed to the fleet); it holds per-worker state keyed by the fleet's worker objects (recent
 * TTFT and tokens/s, prefix memory), so a worker that leaves the fleet leaves the router too.
 *
 * Strategies (ROUTING_STRATEGY): `scored` (score.ts + pick.ts), `least-loaded` and
 * `round-robin` (references, baselines.ts), `oracle` (benchmark only, oracle.ts).
 */
import { createPrefixMemory, type PrefixMemory } from '../../../../lib/chat/prefix-blocks.js';
import { createRoundRobin, leastLoaded } from './baselines.js';
import type { Candidate, Dispatch, Outcome, RoutingHint } from './candidate.js';
import { createFreeShare } from './free-share.js';
import type { Oracle } from './oracle.js';
import { weightedPick } from './pick.js';
import type { Random } from './random.js';
import { DEFAULT_SLOT_MS, estimate, slotMs, type Estimate, type Observed } from './score.js';
import type { RoutingSettings } from './settings.js';
import { createWorkerStats, type WorkerStats } from './worker-stats.js';

export interface Choice {
  index: number;
  /** Hand back with the request's outcome (`observe`). */
  dispatch: Dispatch;
}

export interface Router {
  readonly settings: RoutingSettings;
  /** The candidate to use (candidates: non-empty, already eligible). */
  choose(candidates: readonly Candidate[], hint: RoutingHint): Choice;
  /** Free-tier bound (free-share.ts): throws capacity_exceeded, else counts the request until `endFree`. */
  admitFree(candidates: readonly Candidate[]): void;
  endFree(): void;
  /** The request's first token arrived (or it ended without one): it no longer counts as waiting. */
  answered(key: object, dispatch: Dispatch): void;
  /** Feedback from a request the worker `key` served to its end. */
  observe(key: object, outcome: Outcome): void;
  /** The scorer's estimate for a candidate (operator view, tests); records nothing. */
  estimate(candidate: Candidate, hint: RoutingHint): Estimate;
  /** What the router currently believes about a worker (operator view, tests). */
  view(key: object): { ttftMs: number | undefined; tokensPerSecond: number | undefined; samples: number; prefixBlocks: number };
}

export interface RouterDeps {
  settings: RoutingSettings;
  random: Random;
  /** Monotonic ms (performance.now in production). */
  now: () => number;
  /** Required with the `oracle` strategy. */
  oracle?: Oracle | undefined;
}

/** Expectations below this are not held against a worker (scheduling noise of a few ms). */
const LATE_FLOOR_MS = 50;

interface PerWorker {
  stats: WorkerStats;
  prefixes: PrefixMemory;
  /** When a request last went there as exploration (bounds probes while one is under way). */
  probedAt: number | undefined;
  /** Requests sent there that have no first token yet. */
  waiting: Set<Dispatch>;
}

export function createRouter(deps: RouterDeps): Router {
  const { settings } = deps;
  if (settings.strategy === 'oracle' && !deps.oracle) throw new Error('the oracle strategy needs ROUTING_ORACLE_FILE');
  const state = new WeakMap<object, PerWorker>();
  const roundRobin = createRoundRobin();
  /**
   * How much slower a prefix-cache miss is than a hit, averaged (EWMA) over the workers known for
   * both: a worker known for one kind only is estimated for the other with it.
   */
  let missOverHit: number | undefined;
  const freeShare = createFreeShare(settings.freeShare);
  const of = (key: object): PerWorker => {
    let s = state.get(key);
    if (!s) {
      s = { stats: createWorkerStats(settings.ewmaAlpha, settings.probeAfterMs), prefixes: createPrefixMemory(settings.prefixMemoryBlocks), probedAt: undefined, waiting: new Set() };
      state.set(key, s);
    }
    return s;
  };
  const observed = (c: Candidate, hint: RoutingHint, now: number): Observed => {
    const s = of(c.key);
    let lateness = 1;
    for (const d of s.waiting) lateness = Math.max(lateness, (now - d.sentAt) / Math.max(LATE_FLOOR_MS, d.expectedMs));
    return {
      lateness,
      ttftHitMs: s.stats.ttftMs(true),
      ttftMissMs: s.stats.ttftMs(false),
      ttftAverageMs: s.stats.averageTtftMs(),
      tokensPerSecond: s.stats.tokensPerSecond(),
      tokensPerRequest: s.stats.tokensPerRequest(),
      prefixMatched: s.prefixes.peek(hint.prefixBlocks),
    };
  };
  const estimates = (candidates: readonly Candidate[], hint: RoutingHint): Estimate[] => {
    const now = deps.now();
    const seen = candidates.map((c) => observed(c, hint, now));
    const slots = seen.map((o) => slotMs(o, settings.weights)).filter((x): x is number => x !== undefined);
    const fallback = slots.length > 0 ? slots.reduce((a, b) => a + b, 0) / slots.length : DEFAULT_SLOT_MS;
    return candidates.map((c, i) => estimate(c, seen[i]!, hint, settings.weights, fallback, missOverHit ?? 1));
  };

  const scored = (candidates: readonly Candidate[], hint: RoutingHint, scores: readonly Estimate[]): number => {
    const now = deps.now();
    const stale = candidates.map((c) => {
      const s = of(c.key);
      const heard = Math.max(s.stats.lastSampleAt() ?? Number.NEGATIVE_INFINITY, s.probedAt ?? Number.NEGATIVE_INFINITY);
      return now - heard;
    });
    // A probe is a user's request sent where the scorer expects it to be slow: it goes only to a
    // free slot (never behind the requests of a worker that may still be slow) and, while the
    // worker is merely stale, only with a prompt whose prefix it is expected to hold (a slow
    // worker's cache hit costs a fraction of its miss); after twice the probe interval without
    // such a prompt, any prompt probes it.
    const probeable = stale.map((ms, k) => {
      const c = candidates[k]!;
      const cheap = hint.prefixBlocks.length === 0 || scores[k]!.hitShare >= 0.5 || ms >= 2 * settings.probeAfterMs;
      return c.inFlight < c.capacity && cheap ? ms : Number.NEGATIVE_INFINITY;
    });
    const i = weightedPick(
      scores.map((e) => e.cost),
      probeable,
      deps.random,
      settings,
    );
    if (stale[i]! >= settings.probeAfterMs) of(candidates[i]!.key).probedAt = now;
    return i;
  };

  return {
    settings,
    choose(candidates, hint) {
      // Every strategy keeps the estimates, memory and feedback, so the operator view means the same under each.
      const scores = estimates(candidates, hint);
      const costs = scores.map((e) => e.cost);
      let i: number;
      switch (settings.strategy) {
        case 'round-robin':
          i = roundRobin.next(candidates);
          break;
        case 'least-loaded':
          i = leastLoaded(candidates);
          break;
        case 'oracle':
          i = deps.oracle!.choose(candidates, hint);
          break;
        case 'scored':
          i = scored(candidates, hint, scores);
          break;
      }
      const chosen = candidates[i]!;
      const sentAt = deps.now();
      const worker = of(chosen.key);
      const matched = worker.prefixes.match(hint.prefixBlocks);
      worker.prefixes.record(hint.prefixBlocks);
      const dispatch: Dispatch = {
        sentAt,
        expectedMs: costs[i]!,
        unqueued: chosen.inFlight < chosen.capacity,
        expectedHit: hint.prefixBlocks.length > 0 && matched * 2 >= hint.prefixBlocks.length,
      };
      worker.waiting.add(dispatch);
      return { index: i, dispatch };
    },
    admitFree: (candidates) => freeShare.admit(candidates),
    endFree: () => freeShare.end(),
    answered(key, dispatch) {
      of(key).waiting.delete(dispatch);
    },
    observe(key, outcome) {
      const s = of(key);
      s.waiting.delete(outcome.dispatch);
      s.stats.observe({ ...outcome.dispatch, ttftMs: outcome.ttftMs, tokens: outcome.tokens, decodeMs: outcome.decodeMs, at: deps.now() });
      const [hit, miss] = [s.stats.ttftMs(true), s.stats.ttftMs(false)];
      if (hit !== undefined && miss !== undefined && hit > 0) {
        const ratio = miss / hit;
        missOverHit = missOverHit === undefined ? ratio : missOverHit + settings.ewmaAlpha * (ratio - missOverHit);
      }
    },
    estimate: (candidate, hint) => estimates([candidate], hint)[0]!,
    view(key) {
      const s = of(key);
      return { ttftMs: s.stats.averageTtftMs(), tokensPerSecond: s.stats.tokensPerSecond(), samples: s.stats.samples(), prefixBlocks: s.prefixes.size };
    },
  };
}
