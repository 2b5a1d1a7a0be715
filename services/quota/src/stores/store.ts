/**
 * The quota store contract: one sliding-window log per scope (API key + tier), holding the
 * reservations admitted in the last `windowMs`. Two implementations with identical semantics,
 * memory.ts (one process) and redis.ts (shared by replicas, one Lua script per operation);
 * test/quota/reference-model.ts is the executable specification both are checked against.
 *
 * Semantics, at time `now` (ms), for one scope:
 * - A reservation is in the window while `now - windowMs < ts`, i.e. it leaves at `ts + windowMs`.
 * - `reserve` admits iff (requests limit null or count + 1 ≤ limit) and (tokens limit null or
 *   Σ tokens + estimate ≤ limit), then records {requestId, ts: now, tokens: estimate}. A request id
 *   already in the window is a retry: allowed again, charged nothing (`duplicate`). An estimate
 *   above the tokens limit is refused for good (`retryable: false`, `retryAfterMs: 0`).
 *   Otherwise a refusal carries the exact time until the same reservation would be admitted if
 *   nothing else arrived: the max over refusing dimensions of the earliest time enough entries
 *   have left the window; `deniedBy` is the dimension with the later time (ties → requests).
 * - `settle` replaces the tokens of an unsettled reservation still in the window by the real
 *   count (more or less than the estimate). A second settle, an unknown id, or a reservation that
 *   has already left the window changes nothing (`applied: false`): usage lands only in the
 *   window the reservation was made in.
 * - A scope whose limits are both null (self-hosted) is never recorded: always allowed.
 * - `lease` records one entry that counts as `requests` reservations and `tokens` tokens (a
 *   block the gateway admits from locally). It is granted only when, after it, every limited
 *   dimension keeps at least `headroom` (a share of its limit) remaining; the grant is the asked
 *   block shrunk by one factor for both dimensions to fit, and nothing when that leaves < 1
 *   request. So the sum of leases and reservations never exceeds a limit, and the last
 *   `headroom` of a window is only ever admitted per request, exactly.
 * - `releaseLease` takes a lease's unused requests and tokens (tokens signed: negative charges
 *   more) off its entry, once; for an unknown or already released lease, or one whose entry has
 *   left the window, it changes nothing (same rule as `settle`).
 */

/** Limits of one scope; null = unlimited. */
export interface LimitPolicy {
  requests: number | null;
  tokens: number | null;
  windowMs: number;
}

/** One dimension (requests or tokens) of a scope after an operation. */
export interface DimensionState {
  /** The limit applied (null = unlimited). */
  limit: number | null;
  /** Charged in the window: reservations, or tokens (may exceed the limit after overrunning settlements). */
  used: number;
  /** max(0, limit - used); 0 when unlimited. */
  remaining: number;
  /** Epoch ms at which the window holds nothing of this dimension (`now` when already empty). */
  resetAt: number;
}

export type DeniedBy = 'requests' | 'tokens';

export interface ReserveOutcome {
  allowed: boolean;
  /** Allowed because this request id already holds a reservation in the window (nothing charged). */
  duplicate: boolean;
  /** Set when refused. */
  deniedBy: DeniedBy | null;
  /** When refused and retryable: ms until the same reservation would be admitted. 0 otherwise. */
  retryAfterMs: number;
  /** false only when refused for good (estimate above the tokens limit). */
  retryable: boolean;
  requests: DimensionState;
  tokens: DimensionState;
}

export interface SettleOutcome {
  applied: boolean;
  tokens: DimensionState;
}

export interface WindowSnapshot {
  requests: DimensionState;
  tokens: DimensionState;
}

export interface ReserveInput {
  requestId: string;
  /** Token estimate (≥ 0). */
  tokens: number;
}

export interface SettleInput {
  requestId: string;
  /** Real tokens used (≥ 0). */
  tokens: number;
}

export interface LeaseInput {
  leaseId: string;
  /** Requests wanted (≥ 1). */
  requests: number;
  /** Tokens wanted (≥ 0). */
  tokens: number;
  /** Share of each limit that must stay remaining after the grant (0–1). */
  headroom: number;
}

export interface LeaseOutcome {
  /** 0 when nothing was granted (nothing recorded). */
  grantedRequests: number;
  grantedTokens: number;
  requests: DimensionState;
  tokens: DimensionState;
}

export interface ReleaseInput {
  leaseId: string;
  unusedRequests: number;
  /** Signed: negative = more tokens used than leased. */
  unusedTokens: number;
}

/** What a lease may take: the asked block scaled down to keep the headroom, or nothing. */
export function leaseGrant(
  input: LeaseInput,
  policy: LimitPolicy,
  usedRequests: number,
  usedTokens: number,
): { requests: number; tokens: number } {
  let factor = 1;
  const fit = (limit: number | null, used: number, asked: number): void => {
    if (limit === null || asked <= 0) return;
    const available = limit - used - Math.ceil(input.headroom * limit);
    factor = Math.min(factor, Math.max(0, available) / asked);
  };
  fit(policy.requests, usedRequests, input.requests);
  fit(policy.tokens, usedTokens, input.tokens);
  const requests = Math.floor(input.requests * factor);
  if (requests < 1) return { requests: 0, tokens: 0 };
  return { requests, tokens: Math.floor(input.tokens * factor) };
}

export interface QuotaStore {
  readonly kind: 'memory' | 'redis';
  reserve(scope: string, input: ReserveInput, policy: LimitPolicy, now: number): Promise<ReserveOutcome>;
  settle(scope: string, input: SettleInput, policy: LimitPolicy, now: number): Promise<SettleOutcome>;
  lease(scope: string, input: LeaseInput, policy: LimitPolicy, now: number): Promise<LeaseOutcome>;
  releaseLease(scope: string, input: ReleaseInput, policy: LimitPolicy, now: number): Promise<SettleOutcome>;
  /** Reports the scope without charging. */
  peek(scope: string, policy: LimitPolicy, now: number): Promise<WindowSnapshot>;
  close(): Promise<void>;
}

export const WINDOW_MS = 60_000;

/** Builds a dimension state; shared so every store fills it the same way. */
export function dimension(limit: number | null, used: number, resetAt: number): DimensionState {
  return { limit, used, remaining: limit === null ? 0 : Math.max(0, limit - used), resetAt };
}
