/**
 * What the routing pipeline sees of a worker and of a request. The fleet builds a Candidate for
 * every worker that passed the eligibility filter (pool, model, owner, health, breaker,
 * capacity); the pipeline scores them and picks one.
 */
export interface Candidate {
  /** Identity for the per-worker memory (feedback, prefix affinity): the fleet's worker object. */
  key: object;
  address: string;
  /** Requests running or queued on the worker, as this gateway sees them now. */
  inFlight: number;
  /** Requests the worker runs at once. */
  capacity: number;
  /** The worker's own time-to-first-token report (its status), used until feedback arrives. */
  reportedTtftMs: number | undefined;
  /** The project that owns the worker (self-hosted workers); undefined = a shared worker. */
  owner: string | undefined;
}

export interface RoutingHint {
  /** Chained hashes of the prompt's prefix blocks (lib/chat/prefix-blocks.ts). */
  prefixBlocks: readonly string[];
  /** The prompt-token estimate (the oracle's prefill cost). */
  promptTokens: number;
  /** The calling project (owner preference). */
  project: string | undefined;
}

/**
 * How the pipeline sent a request, and how far it has got: handed back with each piece of
 * feedback (router.ts `firstToken`, `progress`, `ended`). The progress fields are written by the
 * router on those calls (a timestamp at the first token, then a counter: nothing allocated, and
 * no clock read, per token).
 */
export interface Dispatch {
  /** The router's clock when the request was sent. */
  sentAt: number;
  /** The scorer's expected TTFT there when it was sent (ms). */
  expectedMs: number;
  /** The worker had a free slot when the request was sent. */
  unqueued: boolean;
  /** The gateway expected the prompt's prefix in the worker's cache. */
  expectedHit: boolean;
  /** The router's clock at the first token (undefined: none yet). */
  firstAt: number | undefined;
  /** Completion tokens relayed so far. */
  tokens: number;
}
