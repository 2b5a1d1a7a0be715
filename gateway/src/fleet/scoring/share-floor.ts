/**
 * A floor under every healthy worker's share of the traffic (ROUTING_MIN_SHARE): a worker that
 * got less than `minShare` of the last `window` requests it was a candidate for (a count of
 * requests, not a stretch of time: an idle fleet keeps its shares) is given the next request it
 * can serve at once, so no healthy worker of a pool sits unused because another looks a little
 * faster, and the router keeps fresh figures for all of them.
 *
 * Only where it costs little: the worker must have a free slot (the request does not queue
 * behind others), and the prompt's prefix must be expected in its cache unless the worker is
 * `PREFIX_WAIVED_AFTER` requests or more short of the floor (a slow worker's cache hit costs a
 * fraction of its miss). The floor is for a worker that is slow by nature, not for one that
 * slowed down: a degraded worker (slower than it has been: `degraded`) is not kept busy by it,
 * and gets a request from it only once it is not heard from (silence.ts; a degraded worker's
 * silence is shorter, router.ts), as a probe like exploration's (pick.ts): one request per
 * silence, to a free slot, with a cached prefix (any prompt only after a long silence), so its
 * recovery is seen without waiting for exploration's draw, after which the floor applies to it
 * in full again.
 */

/** Short of the floor by this many requests, a worker takes a prompt whose prefix it lacks. */
export const PREFIX_WAIVED_AFTER = 2;

/** A worker decoding below this fraction of the fastest rate it has shown is degraded. */
export const DEGRADED_BELOW = 0.5;

/** The requests one worker was a candidate for, the last `size` of them: which went there. */
export interface ShareWindow {
  /** One more request it was a candidate for; `got`: it went there. */
  record(got: boolean): void;
  /** Requests it is short of `minShare` of the window (0: at or above the floor, or too few seen). */
  deficit(minShare: number): number;
}

export function createShareWindow(size: number): ShareWindow {
  const ring = new Uint8Array(size);
  let next = 0;
  let filled = 0;
  let got = 0;
  return {
    record(wentThere) {
      if (size === 0) return;
      if (filled === size) got -= ring[next]!;
      else filled += 1;
      ring[next] = wentThere ? 1 : 0;
      got += ring[next]!;
      next = (next + 1) % size;
    },
    // Whole requests: a window of 19 at 5 % asks for none, of 20 for one.
    deficit: (minShare) => Math.max(0, Math.ceil(minShare * filled - 1e-9) - got),
  };
}

/** A worker's speed figures (worker-stats.ts): now, or the best it has shown. */
export interface Speed {
  tokensPerSecond: number | undefined;
  ttftHitMs: number | undefined;
  ttftMissMs: number | undefined;
}

/**
 * Slower than it has been: its decode-rate average below `DEGRADED_BELOW` of the highest it has
 * reached, or the TTFT figure of the kind measured last (`newer`: cache hit or miss; the older
 * one may predate a recovery) above 1 / `DEGRADED_BELOW` of that kind's lowest (each kind
 * against itself: a miss takes many times a hit), or a request in flight there late by as much
 * (lateness, score.ts), so a slowdown counts as soon as the scorer sees it. A figure not
 * measured yet says nothing: a new worker is not degraded.
 */
export function degraded(now: Speed, best: Speed, newer: 'hit' | 'miss' | undefined, lateness: number): boolean {
  if (lateness * DEGRADED_BELOW >= 1) return true;
  if (now.tokensPerSecond !== undefined && best.tokensPerSecond !== undefined && now.tokensPerSecond < DEGRADED_BELOW * best.tokensPerSecond) return true;
  const [ttft, lowest] = newer === 'hit' ? [now.ttftHitMs, best.ttftHitMs] : [now.ttftMissMs, best.ttftMissMs];
  return newer !== undefined && ttft !== undefined && lowest !== undefined && ttft * DEGRADED_BELOW > lowest;
}

/** What the floor needs of a candidate. */
export interface FloorCandidate {
  /** Requests short of the floor (ShareWindow.deficit). */
  deficit: number;
  degraded: boolean;
  /** Not heard from (silence.ts): a degraded worker may then be probed. */
  silent: boolean;
  /**
   * Not heard from for twice a healthy worker's silence: a degraded worker may then be probed
   * with a prompt whose prefix it lacks.
   */
  longSilent: boolean;
  /** It has a free slot. */
  free: boolean;
  /** The prompt's prefix is expected in its cache (or the prompt has none). */
  holdsPrefix: boolean;
}

/**
 * The candidate the floor gives this request to (-1: none): the one furthest below it, among
 * equals one that holds the prompt's prefix. A degraded worker is always short of the floor, so
 * its shortfall does not waive the prefix: only a long silence does (a cache miss there is the
 * slowest request of all, and holds a slot while the worker may be recovering).
 */
export function floorPick(candidates: readonly FloorCandidate[]): number {
  let best = -1;
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i]!;
    if (c.deficit <= 0 || (c.degraded && !c.silent) || !c.free) continue;
    if (!c.holdsPrefix && (c.degraded ? !c.longSilent : c.deficit < PREFIX_WAIVED_AFTER)) continue;
    const b = best < 0 ? undefined : candidates[best]!;
    if (!b || c.deficit > b.deficit || (c.deficit === b.deficit && c.holdsPrefix && !b.holdsPrefix)) best = i;
  }
  return best;
}
