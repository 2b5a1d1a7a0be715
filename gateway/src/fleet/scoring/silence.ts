/**
 * When a worker counts as "not heard from": measured against the traffic it could have served,
 * not the clock alone. A worker the router avoids (e.g. while it is slow) sees the requests it
 * was a candidate for go elsewhere; once `afterRequests` of them did since its last feedback (and
 * at least `afterMs` has passed), what the router knows of it is old news: exploration may probe
 * it, and its next sample starts its figures over (worker-stats.ts). A pause in the whole fleet's
 * traffic (the idle time between two bursts, however long against the workers' answer times) is
 * not a silence: nobody was sent anything, so nothing was missed. `maxMs` bounds it by time too
 * (a pool whose requests are rare still probes an avoided worker within that).
 *
 * `level` is the silence in units of the threshold: ≥ 1 is "not heard from", ≥ 2 twice as long
 * (the router's probe rule takes any prompt then). `afterRequests` 0 measures by time alone
 * (`afterMs`); `afterMs` 0 by the count alone.
 */
export interface SilenceSettings {
  afterRequests: number;
  afterMs: number;
  /** 0: never by time alone. */
  maxMs: number;
}

/**
 * `missed`: requests routed elsewhere while the worker was a candidate, since `sinceMs` (its last
 * feedback; undefined: never heard from, an infinite silence). `elapsedMs`: now − sinceMs.
 */
export function silenceLevel(settings: SilenceSettings, missed: number, elapsedMs: number | undefined): number {
  if (elapsedMs === undefined) return Number.POSITIVE_INFINITY;
  const byCount = settings.afterRequests > 0 ? missed / settings.afterRequests : Number.POSITIVE_INFINITY;
  const byTime = settings.afterMs > 0 ? elapsedMs / settings.afterMs : Number.POSITIVE_INFINITY;
  const ceiling = settings.maxMs > 0 ? elapsedMs / settings.maxMs : 0;
  // Both thresholds 0: every worker is always silent (probed and restarted at every chance).
  return Math.max(Math.min(byCount, byTime), ceiling);
}
