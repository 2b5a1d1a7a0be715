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
import type { Candidate, Outcome, RoutingHint } from './candidate.js';
import { createFreeShare } from './free-share.js';
import type { Oracle } from './oracle.js';
import { weightedPick } from './pick.js';
import type { Random } from './random.js';
import { features, scores, type Observed } from './score.js';
import type { RoutingSettings } from './settings.js';
import { createWorkerStats, type WorkerStats } from './worker-stats.js';

export interface Router {
  readonly settings: RoutingSettings;
  /** The index of the candidate to use (candidates: non-empty, already eligible). */
  choose(candidates: readonly Candidate[], hint: RoutingHint): number;
  /** Free-tier bound (free-share.ts): throws capacity_exceeded, else counts the request until `endFree`. */
  admitFree(candidates: readonly Candidate[]): void;
  endFree(): void;
  /** Feedback from a request the worker `key` served to its end. */
  observe(key: object, outcome: Outcome): void;
  /** What the router currently believes about a worker (operator view, tests). */
  view(key: object): { ttftMs: number | undefined; tokensPerSecond: number | undefined; samples: number; prefixBlocks: number };
}

export interface RouterDeps {
  settings: RoutingSettings;
  random: Random;
  /** Required with the `oracle` strategy. */
  oracle?: Oracle | undefined;
}

interface PerWorker {
  stats: WorkerStats;
  prefixes: PrefixMemory;
}

export function createRouter(deps: RouterDeps): Router {
  const { settings } = deps;
  if (settings.strategy === 'oracle' && !deps.oracle) throw new Error('the oracle strategy needs ROUTING_ORACLE_FILE');
  const state = new WeakMap<object, PerWorker>();
  const roundRobin = createRoundRobin();
  const freeShare = createFreeShare(settings.freeShare);
  const of = (key: object): PerWorker => {
    let s = state.get(key);
    if (!s) {
      s = { stats: createWorkerStats(settings.ewmaAlpha), prefixes: createPrefixMemory(settings.prefixMemoryBlocks) };
      state.set(key, s);
    }
    return s;
  };

  const scored = (candidates: readonly Candidate[], hint: RoutingHint): number => {
    const observed: Observed[] = candidates.map((c) => {
      const s = of(c.key);
      return { ttftMs: s.stats.ttftMs(), tokensPerSecond: s.stats.tokensPerSecond(), prefixMatched: s.prefixes.peek(hint.prefixBlocks) };
    });
    return weightedPick(scores(features(candidates, observed, hint), settings.weights), deps.random, settings);
  };

  return {
    settings,
    choose(candidates, hint) {
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
          i = scored(candidates, hint);
          break;
      }
      // Every strategy keeps the memory, so the operator view means the same under each.
      const prefixes = of(candidates[i]!.key).prefixes;
      prefixes.match(hint.prefixBlocks);
      prefixes.record(hint.prefixBlocks);
      return i;
    },
    admitFree: (candidates) => freeShare.admit(candidates),
    endFree: () => freeShare.end(),
    observe(key, outcome) {
      const s = of(key).stats;
      s.observeTtft(outcome.ttftMs);
      if (outcome.tokens > 1 && outcome.decodeMs > 0) s.observeTokensPerSecond(((outcome.tokens - 1) * 1000) / outcome.decodeMs);
    },
    view(key) {
      const s = of(key);
      return { ttftMs: s.stats.ttftMs(), tokensPerSecond: s.stats.tokensPerSecond(), samples: s.stats.samples(), prefixBlocks: s.prefixes.size };
    },
  };
}
