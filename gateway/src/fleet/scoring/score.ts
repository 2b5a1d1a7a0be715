/**
 * The score of each eligible worker: the time to first token the request can expect there, in
 * ms (lower is better), from what this gateway saw and remembers:
 *
 *   cost = w.ttft · prefill + w.load · wait,   × (1 − w.owner) for the calling project's own worker
 *
 * - prefill: the worker's recent TTFT of requests that found a free slot, for prompts expected
 *   to hit its prefix cache and for the rest (worker-stats.ts), blended by the share of the
 *   prompt's prefix blocks the gateway recently sent there, trusted `w.prefix` (0–1); until the
 *   gateway has a sample, the worker's own TTFT report (status), else 0 (a new worker is tried);
 *   the older of the hit and miss figures is taken no lower than the newer one implies (with the
 *   fleet's miss/hit ratio), since it may predate a slowdown;
 *   multiplied by the worst lateness of the requests there in flight (router.ts: time waited for
 *   a first token ÷ the TTFT expected when sent; time since the first token ÷ the time the
 *   tokens relayed so far should have taken at the worker's known rate), so a slowdown shows
 *   before any request ends; never below the longest time a request sent to a free slot there
 *   has been waiting for its first token (a lower bound of its TTFT, what a worker that has not
 *   answered yet is known by);
 * - wait: when every slot is taken, the time until one frees up for this request: the requests
 *   there in flight, in the order they were sent, fill the slots; a slot frees up when its
 *   request ends, and each queued request then holds it for its first token as the hit or miss
 *   it was expected to be (times the same lateness) plus its decode (answer tokens ÷ the
 *   worker's tokens/s, weighted `w.throughput`). A request already decoding ends after its
 *   remaining tokens (the answer length less the tokens relayed) at its own live pace (time
 *   since its first token ÷ its tokens, with one inter-token gap at the worker's known rate as a
 *   prior), so a worker whose answers slowed down shows a long queue within a few tokens rather
 *   than after several answers have moved its averaged token rate. The worker's tokens/s is its
 *   average over the answers it finished, and before it has finished one, the live pace of
 *   those it is decoding. Requests the router has no record of count a whole slot time each
 *   (average TTFT + decode).
 *
 * The pick (router.ts) adds `evictionMs` to the cost: the prefix memory is bounded like the
 * worker's KV cache, so a prompt whose prefix the worker does not hold pushes out the least
 * recently used blocks it does hold, which later prompts of those prefixes would have hit. Each
 * block evicted is charged at the worker's miss − hit TTFT per block of this prompt, weighted
 * `w.eviction` (1: evicting a whole prompt's worth of blocks costs one later miss there) and
 * trusted like the memory's matches (`w.prefix`). Without
 * it a prompt went to a worker without its prefix whenever every holder looked slightly busier,
 * and the holders lost theirs in turn.
 */
import type { Candidate, RoutingHint } from './candidate.js';

export interface ScoreWeights {
  ttft: number;
  load: number;
  /** Trust in the prefix memory, 0–1. */
  prefix: number;
  throughput: number;
  /** Discount of the calling project's own workers, 0–1. */
  owner: number;
  /** Weight of the prefix blocks a miss would evict from the worker's cache (evictionMs). */
  eviction: number;
}

/** What the router knows of a candidate beyond its status (feedback, prefix memory). */
export interface Observed {
  /**
   * The worst lateness of the requests in flight there (1 = none late): time waited for a first
   * token ÷ the TTFT expected when sent, or time since the first token ÷ the time the tokens
   * relayed so far should have taken.
   */
  lateness: number;
  /** The longest time a request sent there to a free slot has waited for its first token (0: none). */
  ttftFloorMs: number;
  ttftHitMs: number | undefined;
  ttftMissMs: number | undefined;
  /** The kind (hit or miss) whose figure was fed last: it tells how fast the worker is now. */
  newerKind: 'hit' | 'miss' | undefined;
  ttftAverageMs: number | undefined;
  tokensPerSecond: number | undefined;
  tokensPerRequest: number | undefined;
  /** Leading prefix blocks of this request the worker was recently sent. */
  prefixMatched: number;
  /** Prefix blocks the worker was sent that sending it this prompt would push out of its memory. */
  prefixEvicted: number;
  /** The requests in flight there that the router sent, in the order it sent them. */
  requests: readonly InFlightRequest[];
}

/** A request in flight on a worker, as the router sees it when scoring. */
export interface InFlightRequest {
  /** Time since its first token (undefined: none yet, it is prefilling or queued). */
  decodingMs: number | undefined;
  /** Completion tokens relayed so far. */
  tokens: number;
  /** The gateway expected its prompt's prefix in the worker's cache when it sent it. */
  expectedHit: boolean;
}

export interface Estimate {
  prefillMs: number;
  waitMs: number;
  /** Share of the prompt's prefix blocks expected in the worker's cache (0–1). */
  hitShare: number;
  /** The expected TTFT (ms). */
  cost: number;
  /**
   * What the prefix blocks this prompt would evict there may cost later requests (ms, weighted
   * `w.eviction`): each evicted block at the worker's miss − hit TTFT per prompt block. Added to
   * `cost` when picking, not part of the expected TTFT.
   */
  evictionMs: number;
}

/** A request's time on a slot when the worker has no feedback yet, before any worker has: 1 s. */
export const DEFAULT_SLOT_MS = 1000;

/**
 * The time a request holds a slot on this worker, from feedback (undefined: no feedback yet): its
 * average TTFT plus its decode (`decode`: decodeMs).
 */
export function slotMs(o: Observed, decode: number): number | undefined {
  const ttft = o.ttftAverageMs ?? o.ttftMissMs ?? o.ttftHitMs;
  return ttft === undefined ? undefined : ttft + decode;
}

/**
 * A request's decode time on this worker, weighted `w.throughput`: the answer length (the
 * worker's, else the fleet's `fleetTokensPerRequest`) at the worker's decode rate (decodeRate);
 * 0 without both.
 */
export function decodeMs(o: Observed, w: ScoreWeights, fleetTokensPerRequest: number | undefined): number {
  const rate = decodeRate(o);
  const answer = o.tokensPerRequest ?? fleetTokensPerRequest;
  return rate && answer ? w.throughput * ((answer * 1000) / rate) : 0;
}

/**
 * Tokens/s the worker decodes at: its average over the requests it finished; until one has, the
 * live pace of those decoding there now (tokens relayed after the first ÷ time since the first,
 * all together). Without it a worker's first requests were expected to hold a slot for their
 * first token alone: in the first burst a slow worker still on its first answers was sent
 * requests to queue behind them, at a wait counted without the seconds its answers take.
 */
function decodeRate(o: Observed): number | undefined {
  if (o.tokensPerSecond) return o.tokensPerSecond;
  let gaps = 0;
  let ms = 0;
  for (const r of o.requests) {
    if (r.decodingMs === undefined || r.tokens < 2) continue;
    gaps += r.tokens - 1;
    ms += r.decodingMs;
  }
  return gaps > 0 && ms > 0 ? (gaps * 1000) / ms : undefined;
}

/** What the router knows across the candidates, for a worker it knows less of. */
export interface FleetFigures {
  /** The slot time of a worker without feedback: the mean of the others', else DEFAULT_SLOT_MS. */
  slotMs: number;
  /** The mean TTFT of the workers with a figure (undefined: none has one yet). */
  ttftMs: number | undefined;
  /** The ratio of miss to hit TTFT on the workers known for both (1 when none is). */
  missOverHit: number;
  /** The mean answer length of the workers with a figure (undefined: none has one yet). */
  tokensPerRequest: number | undefined;
}

export const NO_FLEET_FIGURES: FleetFigures = { slotMs: DEFAULT_SLOT_MS, ttftMs: undefined, missOverHit: 1, tokensPerRequest: undefined };

/**
 * The expected wait for a slot on a worker with `capacity` slots and `inFlight` requests (running
 * and queued): `decodingLeftMs` are the times the requests known to be decoding still hold their
 * slots; `waitingSlotMs` the times the requests known not to be decoding yet will hold one from
 * when they get it, in the order they were sent (the first of them may already be prefilling:
 * counted whole, the pessimistic side of not knowing when it started); any other request holds
 * one for `slotMs`. Requests take the slots in order, each the first one free.
 */
export function slotWaitMs(capacity: number, inFlight: number, decodingLeftMs: readonly number[], waitingSlotMs: readonly number[], slotMs: number): number {
  const slots = Math.max(1, capacity);
  if (inFlight < slots) return 0;
  // When each slot frees up: the decoding requests' ends, then the rest's ends as they start.
  const free = decodingLeftMs.slice(0, slots).sort((a, b) => a - b);
  const rest = Math.max(0, inFlight - free.length);
  const hold = (k: number): number => waitingSlotMs[k] ?? slotMs;
  let k = 0;
  for (; free.length < slots && k < rest; k++) free.push(hold(k));
  free.sort((a, b) => a - b);
  for (; k < rest; k++) {
    // The earliest slot to free up takes the next request in line.
    free[0]! += hold(k);
    for (let i = 0; i + 1 < free.length && free[i]! > free[i + 1]!; i++) [free[i], free[i + 1]] = [free[i + 1]!, free[i]!];
  }
  return free[0]!;
}

/**
 * A worker without feedback is tried first (prefill 0, or its own report) while it has nothing
 * in flight, but its queue counts at the fleet's slot time; once a request sent there has waited
 * for its first token, it is expected to take that long plus a typical TTFT of the fleet (it has
 * not answered yet: whatever it is, it is slower than that), so a slow worker is not sent a
 * second request before its first has told anything.
 */
export function estimate(c: Candidate, o: Observed, hint: RoutingHint, w: ScoreWeights, fleet: FleetFigures = NO_FLEET_FIGURES): Estimate {
  const { missOverHit } = fleet;
  const hitShare = hint.prefixBlocks.length === 0 ? 0 : o.prefixMatched / hint.prefixBlocks.length;
  const trust = Math.min(1, Math.max(0, w.prefix)) * hitShare;
  // A worker known for one kind only (hit or miss) is expected to differ between the two as the
  // workers known for both do: taking its hit figure for a miss would send it the costly prompts.
  const missFromHit = o.ttftHitMs !== undefined ? o.ttftHitMs * missOverHit : undefined;
  const hitFromMiss = o.ttftMissMs !== undefined ? o.ttftMissMs / missOverHit : undefined;
  let miss = o.ttftMissMs ?? missFromHit ?? c.reportedTtftMs ?? 0;
  let hit = o.ttftHitMs ?? hitFromMiss ?? miss;
  // The older figure of the two may predate a slowdown the newer one has seen (a worker sent
  // only cached prompts while it was slow still had its fast miss figure): it is taken no lower
  // than the newer one implies.
  if (o.newerKind === 'hit' && missFromHit !== undefined) miss = Math.max(miss, missFromHit);
  if (o.newerKind === 'miss' && hitFromMiss !== undefined) hit = Math.max(hit, hitFromMiss);
  // A request in flight behind its expected pace (its first token, or its tokens since) is the
  // first sign of a slowdown: everything on that worker is taken to be that much slower.
  const slowdown = Math.max(1, o.lateness);
  const unknown = o.ttftMissMs === undefined && o.ttftHitMs === undefined;
  const floor = unknown && o.ttftFloorMs > 0 ? o.ttftFloorMs + (fleet.ttftMs ?? 0) : o.ttftFloorMs;
  const prefillMs = Math.max((trust * hit + (1 - trust) * miss) * slowdown, floor);
  const decode = decodeMs(o, w, fleet.tokensPerRequest);
  const workerSlot = slotMs(o, decode);
  const slot = (workerSlot ?? fleet.slotMs) * slowdown;
  const waiting = waitingSlots(o, workerSlot === undefined ? undefined : { hitMs: hit * slowdown, missMs: miss * slowdown, decodeMs: decode }, slot);
  const waitMs = slotWaitMs(c.capacity, c.inFlight, decodingLeft(o, w, fleet, slot), waiting, slot);
  const own = c.owner !== undefined && c.owner === hint.project;
  const cost = (w.ttft * prefillMs + w.load * waitMs) * (own ? 1 - Math.min(1, Math.max(0, w.owner)) : 1);
  // The evicted blocks are read from the same prefix memory, trusted as much (`w.prefix`).
  const evictionMs = hint.prefixBlocks.length === 0 ? 0 : (Math.min(1, Math.max(0, w.prefix)) * w.eviction * o.prefixEvicted * Math.max(0, miss - hit)) / hint.prefixBlocks.length;
  return { prefillMs, waitMs, hitShare, cost, evictionMs };
}

/**
 * How long each request decoding on the worker still holds its slot: its remaining tokens (the
 * worker's answer length, else the fleet's, less those relayed; at least one) at its live pace,
 * time since its first token ÷ tokens since, with one gap at the worker's known rate as a prior
 * (a request that has just begun is taken at the known rate; one that stalls slows at once).
 * The decode part is weighted `w.throughput`, as in the slot time. Without a known rate, one
 * token relayed tells no pace: that request counts a whole `slotMs`.
 */
function decodingLeft(o: Observed, w: ScoreWeights, fleet: FleetFigures, slotMs: number): number[] {
  const out: number[] = [];
  const answer = o.tokensPerRequest ?? fleet.tokensPerRequest;
  if (answer === undefined) return out;
  const gapMs = o.tokensPerSecond ? 1000 / o.tokensPerSecond : undefined;
  for (const r of o.requests) {
    if (r.decodingMs === undefined) continue;
    const gaps = Math.max(0, r.tokens - 1);
    if (gapMs === undefined && gaps === 0) {
      out.push(slotMs);
      continue;
    }
    const pace = gapMs !== undefined ? (r.decodingMs + gapMs) / (gaps + 1) : r.decodingMs / gaps;
    out.push(w.throughput * Math.max(1, answer - r.tokens) * pace);
  }
  return out;
}

/**
 * How long each request not decoding yet on the worker will hold a slot once it has one, in the
 * order they were sent: its first token as the hit or miss it was expected to be (`hitMs`,
 * `missMs`: the worker's figures times its current lateness) plus its decode at the worker's
 * rate (`decodeMs`: not multiplied by the lateness, which the live pace already shows; doing
 * both made the routing model's TTFT p99 worse). A worker known for nothing yet (`known`
 * undefined): `slotMs` each. A miss holds a slot for its whole prefill, so a queue of misses is
 * longer than one of hits: with one average for both, prompts without their prefix were sent to
 * the fastest worker's queue, where they delayed every request behind them more than expected.
 */
function waitingSlots(o: Observed, known: { hitMs: number; missMs: number; decodeMs: number } | undefined, slotMs: number): number[] {
  const out: number[] = [];
  for (const r of o.requests) {
    if (r.decodingMs === undefined) out.push(known ? (r.expectedHit ? known.hitMs : known.missMs) + known.decodeMs : slotMs);
  }
  return out;
}
