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
import type { Candidate, Dispatch, RoutingHint } from './candidate.js';
import { createFreeShare } from './free-share.js';
import type { Oracle } from './oracle.js';
import { weightedPick } from './pick.js';
import type { Random } from './random.js';
import { DEFAULT_SLOT_MS, decodeMs, estimate, slotMs, type Estimate, type InFlightRequest, type Observed } from './score.js';
import type { RoutingSettings } from './settings.js';
import { createShareWindow, degraded, floorPick, type ShareWindow } from './share-floor.js';
import { silenceLevel } from './silence.js';
import { createWorkerStats, type WorkerStats } from './worker-stats.js';

export interface Choice {
  index: number;
  /** Hand back with the request's feedback (`firstToken`, `progress`, `ended`). */
  dispatch: Dispatch;
}

export interface Router {
  readonly settings: RoutingSettings;
  /** The candidate to use (candidates: non-empty, already eligible). */
  choose(candidates: readonly Candidate[], hint: RoutingHint): Choice;
  /** Free-tier bound (free-share.ts): throws capacity_exceeded, else counts the request until `endFree`. */
  admitFree(candidates: readonly Candidate[]): void;
  endFree(): void;
  /**
   * The request's first token arrived on the worker `key`: its time to first token (from
   * `dispatch.sentAt`, on the router's clock) is a sample. Once per request; later calls are ignored.
   */
  firstToken(key: object, dispatch: Dispatch): void;
  /**
   * `tokens` more completion tokens of the request were relayed (per delta, on the hot path:
   * a counter on the dispatch; nothing allocated, no clock read).
   */
  progress(dispatch: Dispatch, tokens: number): void;
  /**
   * The request is over on the worker `key`. `completed`: the worker finished it (its decode rate
   * and length are a sample); else it failed or was abandoned (nothing learned). Once per request.
   */
  ended(key: object, dispatch: Dispatch, completed: boolean): void;
  /** The scorer's estimate for a candidate (operator view, tests); records nothing. */
  estimate(candidate: Candidate, hint: RoutingHint): Estimate;
  /** The scorer's estimates for candidates as `choose` sees them (benchmark traces); records nothing. */
  estimates(candidates: readonly Candidate[], hint: RoutingHint): Estimate[];
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
  /** Requests routed elsewhere while it was a candidate, since its last feedback (silence.ts). */
  missed: number;
  /** The same since its last feedback or probe, whichever came last. */
  missedSinceProbe: number;
  /** Requests sent there that have not ended (their progress: Dispatch). */
  inFlight: Set<Dispatch>;
  /** Which of the last requests it was a candidate for went there (the share floor). */
  share: ShareWindow;
  /**
   * When a request after a pause in all traffic (settings.probeAfterPauseMs) found it degraded:
   * it counts as not heard from until its next feedback (undefined: no such pause since).
   */
  pausedAt: number | undefined;
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
  /** When the last request was routed (undefined: none yet): the start of a pause in all traffic. */
  let lastChosenAt: number | undefined;
  const freeShare = createFreeShare(settings.freeShare);
  const of = (key: object): PerWorker => {
    let s = state.get(key);
    if (!s) {
      s = { stats: createWorkerStats(settings.ewmaAlpha), prefixes: createPrefixMemory(settings.prefixMemoryBlocks), probedAt: undefined, missed: 0, missedSinceProbe: 0, inFlight: new Set(), share: createShareWindow(settings.minShareWindow), pausedAt: undefined };
      state.set(key, s);
    }
    return s;
  };
  const observed = (c: Candidate, hint: RoutingHint, now: number): Observed => {
    const s = of(c.key);
    const tps = s.stats.tokensPerSecond();
    const gapMs = tps ? 1000 / tps : undefined;
    let lateness = 1;
    let ttftFloorMs = 0;
    const requests: InFlightRequest[] = [];
    for (const d of s.inFlight) {
      requests.push({ decodingMs: d.firstAt === undefined ? undefined : now - d.firstAt, tokens: d.tokens, expectedHit: d.expectedHit });
      if (d.firstAt === undefined) {
        // Waiting for its first token: behind the TTFT expected when it was sent.
        lateness = Math.max(lateness, (now - d.sentAt) / Math.max(LATE_FLOOR_MS, d.expectedMs));
        if (d.unqueued) ttftFloorMs = Math.max(ttftFloorMs, now - d.sentAt);
      } else if (gapMs !== undefined) {
        // Decoding: the next token is due `tokens` inter-token gaps after the first at the
        // worker's known rate; time since the first beyond that is a slower rate now.
        lateness = Math.max(lateness, (now - d.firstAt) / Math.max(LATE_FLOOR_MS, d.tokens * gapMs));
      }
    }
    return {
      lateness,
      ttftFloorMs,
      ttftHitMs: s.stats.ttftMs(true),
      ttftMissMs: s.stats.ttftMs(false),
      newerKind: s.stats.newerKind(),
      ttftAverageMs: s.stats.averageTtftMs(),
      tokensPerSecond: s.stats.tokensPerSecond(),
      tokensPerRequest: s.stats.tokensPerRequest(),
      prefixMatched: s.prefixes.peek(hint.prefixBlocks),
      prefixEvicted: settings.weights.eviction > 0 ? s.prefixes.evictions(hint.prefixBlocks) : 0,
      requests,
    };
  };
  const assess = (candidates: readonly Candidate[], hint: RoutingHint): { seen: Observed[]; scores: Estimate[] } => {
    const now = deps.now();
    const seen = candidates.map((c) => observed(c, hint, now));
    const mean = (xs: number[]): number | undefined => (xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined);
    const tokensPerRequest = mean(seen.map((o) => o.tokensPerRequest).filter((x): x is number => x !== undefined));
    const fleet = {
      slotMs: mean(seen.map((o) => slotMs(o, decodeMs(o, settings.weights, tokensPerRequest))).filter((x): x is number => x !== undefined)) ?? DEFAULT_SLOT_MS,
      ttftMs: mean(seen.map((o) => o.ttftAverageMs ?? o.ttftMissMs ?? o.ttftHitMs).filter((x): x is number => x !== undefined)),
      missOverHit: missOverHit ?? 1,
      tokensPerRequest,
    };
    return { seen, scores: candidates.map((c, i) => estimate(c, seen[i]!, hint, settings.weights, fleet)) };
  };
  const estimates = (candidates: readonly Candidate[], hint: RoutingHint): Estimate[] => assess(candidates, hint).scores;

  /**
   * A degraded worker's silence (settings.probeDegradedAfterRequests): shorter than a healthy
   * one's. A worker avoided because it is slow is probed to see whether it still is, and the
   * sooner the next probe, the sooner a recovery is seen: with a healthy worker's silence, the
   * probes of the routing benchmark's worker that turns 8× slower came so far apart that one
   * sent just before its recovery (its answer, slow too, keeps it heard from until it ends) left
   * it unused for most of what followed (docs/BENCHMARKS.md, twelfth sitting).
   */
  const degradedSilence = settings.probeDegradedAfterRequests > 0 ? { ...settings.silence, afterRequests: settings.probeDegradedAfterRequests } : settings.silence;
  /**
   * How long the worker has not been heard from, in silence.ts's units (≥ 1: silent), against a
   * healthy worker's silence, or (`slow`) against a degraded one's.
   */
  const silence = (s: PerWorker, now: number, sinceProbe: boolean, slow = false): number => {
    const last = s.stats.lastSampleAt();
    const heard = sinceProbe && s.probedAt !== undefined ? Math.max(last ?? s.probedAt, s.probedAt) : last;
    const level = silenceLevel(slow ? degradedSilence : settings.silence, sinceProbe ? s.missedSinceProbe : s.missed, heard === undefined ? undefined : now - heard);
    // Found degraded after a pause: not heard from until its next feedback, and as a probe
    // target until one is sent there.
    const paused = s.pausedAt !== undefined && (!sinceProbe || s.probedAt === undefined || s.probedAt < s.pausedAt);
    return paused ? Math.max(1, level) : level;
  };
  /** Slower than it has been (share-floor.ts `degraded`). */
  const slowerThanBefore = (s: PerWorker, lateness: number): boolean =>
    degraded({ tokensPerSecond: s.stats.tokensPerSecond(), ttftHitMs: s.stats.ttftMs(true), ttftMissMs: s.stats.ttftMs(false) }, s.stats.best(), s.stats.newerKind(), lateness);
  /** Feedback from the worker: it is heard from again. */
  const heard = (s: PerWorker): void => {
    s.missed = 0;
    s.missedSinceProbe = 0;
    s.pausedAt = undefined;
  };
  /**
   * The first request after a pause in all traffic longer than `probeAfterPauseMs`: the
   * candidates slower than they have been count as not heard from (silence above). Nobody was
   * sent anything during the pause, so no worker missed a request and the count of silence.ts
   * did not move; a worker that recovered while the fleet was idle is probed now rather than
   * after `afterRequests` more requests have gone elsewhere.
   */
  const afterPause = (candidates: readonly Candidate[], seen: readonly Observed[], now: number): void => {
    const pause = lastChosenAt === undefined ? 0 : now - lastChosenAt;
    lastChosenAt = now;
    if (settings.probeAfterPauseMs <= 0 || pause <= settings.probeAfterPauseMs) return;
    candidates.forEach((c, k) => {
      const s = of(c.key);
      if (slowerThanBefore(s, seen[k]!.lateness)) s.pausedAt = now;
    });
  };

  /** The share floor's candidate for this request (share-floor.ts; -1: none). */
  const belowFloor = (
    candidates: readonly Candidate[],
    hint: RoutingHint,
    scores: readonly Estimate[],
    slow: readonly boolean[],
    stale: readonly number[],
    anyPrompt: readonly boolean[],
  ): number => {
    if (settings.minShare <= 0) return -1;
    return floorPick(
      candidates.map((c, k) => ({
        deficit: of(c.key).share.deficit(settings.minShare),
        degraded: slow[k]!,
        silent: stale[k]! >= 1,
        longSilent: anyPrompt[k]!,
        free: c.inFlight < c.capacity,
        holdsPrefix: hint.prefixBlocks.length === 0 || scores[k]!.hitShare >= 0.5,
      })),
    );
  };

  const scored = (candidates: readonly Candidate[], hint: RoutingHint, seen: readonly Observed[], scores: readonly Estimate[]): number => {
    const now = deps.now();
    const slow = candidates.map((c, k) => slowerThanBefore(of(c.key), seen[k]!.lateness));
    // Silence against a healthy worker's threshold, and (`stale`) against its own: a degraded
    // worker's is shorter (degradedSilence).
    const level = candidates.map((c) => silence(of(c.key), now, true));
    const stale = candidates.map((c, k) => (slow[k]! ? Math.max(level[k]!, silence(of(c.key), now, true, true)) : level[k]!));
    // After twice a healthy worker's silence, any prompt may probe a worker (below): the same
    // count whatever its own threshold, so a degraded worker probed more often is not also sent
    // more prompts it lacks (on a worker 8× slower, a cache miss is the slowest request of all,
    // and it holds a slot through the recovery it was meant to see).
    const anyPrompt = level.map((l) => l >= 2);
    // A probe is a user's request sent where the scorer expects it to be slow: it goes only to a
    // free slot (never behind the requests of a worker that may still be slow) and, until any
    // prompt may probe it, only with a prompt whose prefix it is expected to hold (a slow
    // worker's cache hit costs a fraction of its miss).
    const probeable = stale.map((l, k) => {
      const c = candidates[k]!;
      const cheap = hint.prefixBlocks.length === 0 || scores[k]!.hitShare >= 0.5 || anyPrompt[k]!;
      return c.inFlight < c.capacity && cheap ? l : Number.NEGATIVE_INFINITY;
    });
    // A worker below its share floor takes the request from the scorer's choice, not from
    // exploration: the pick keeps its exploration draw and otherwise has that worker alone.
    const floor = belowFloor(candidates, hint, scores, slow, stale, anyPrompt);
    const i = weightedPick(
      scores.map((e, k) => (floor < 0 || k === floor ? e.cost + e.evictionMs : Number.POSITIVE_INFINITY)),
      probeable,
      deps.random,
      settings,
    );
    if (stale[i]! >= 1) {
      const probed = of(candidates[i]!.key);
      probed.probedAt = now;
      probed.missedSinceProbe = 0;
    }
    return i;
  };

  return {
    settings,
    choose(candidates, hint) {
      // Every strategy keeps the estimates, memory and feedback, so the operator view means the same under each.
      const { seen, scores } = assess(candidates, hint);
      afterPause(candidates, seen, deps.now());
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
          i = scored(candidates, hint, seen, scores);
          break;
      }
      const chosen = candidates[i]!;
      // Every other candidate missed this request: that, not the clock, is what makes a worker
      // not heard from (silence.ts).
      for (let k = 0; k < candidates.length; k++) {
        of(candidates[k]!.key).share.record(k === i);
        if (k === i) continue;
        const passed = of(candidates[k]!.key);
        passed.missed += 1;
        passed.missedSinceProbe += 1;
      }
      const sentAt = deps.now();
      const worker = of(chosen.key);
      const matched = worker.prefixes.match(hint.prefixBlocks);
      worker.prefixes.record(hint.prefixBlocks);
      const dispatch: Dispatch = {
        sentAt,
        expectedMs: costs[i]!,
        unqueued: chosen.inFlight < chosen.capacity,
        expectedHit: hint.prefixBlocks.length > 0 && matched * 2 >= hint.prefixBlocks.length,
        firstAt: undefined,
        tokens: 0,
      };
      worker.inFlight.add(dispatch);
      return { index: i, dispatch };
    },
    admitFree: (candidates) => freeShare.admit(candidates),
    endFree: () => freeShare.end(),
    firstToken(key, dispatch) {
      if (dispatch.firstAt !== undefined) return;
      const now = deps.now();
      dispatch.firstAt = now;
      const s = of(key);
      // A degraded worker's sample after its own (shorter) silence starts its figures over too:
      // a probe that finds it recovered brings it back at once.
      const afterSilence = silence(s, now, false, slowerThanBefore(s, 1)) >= 1;
      heard(s);
      s.stats.firstToken({ ttftMs: now - dispatch.sentAt, unqueued: dispatch.unqueued, expectedHit: dispatch.expectedHit, afterSilence, at: now });
      const [hit, miss] = [s.stats.ttftMs(true), s.stats.ttftMs(false)];
      if (hit !== undefined && miss !== undefined && hit > 0) {
        const ratio = miss / hit;
        missOverHit = missOverHit === undefined ? ratio : missOverHit + settings.ewmaAlpha * (ratio - missOverHit);
      }
    },
    progress(dispatch, tokens) {
      dispatch.tokens += tokens;
    },
    ended(key, dispatch, completed) {
      const s = of(key);
      s.inFlight.delete(dispatch);
      if (completed && dispatch.firstAt !== undefined) {
        heard(s);
        const now = deps.now();
        s.stats.ended({ tokens: dispatch.tokens, decodeMs: now - dispatch.firstAt, at: now });
      }
    },
    estimate: (candidate, hint) => estimates([candidate], hint)[0]!,
    estimates,
    view(key) {
      const s = of(key);
      return { ttftMs: s.stats.averageTtftMs(), tokensPerSecond: s.stats.tokensPerSecond(), samples: s.stats.samples(), prefixBlocks: s.prefixes.size };
    },
  };
}
