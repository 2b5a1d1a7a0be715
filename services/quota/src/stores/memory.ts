/**
 * In-process sliding-window log (the embedded default, and the per-replica fallback during a
 * Redis outage). Same semantics as the Redis scripts, documented in store.ts; operations are
 * synchronous under the hood, so concurrent calls in one process are trivially atomic.
 */
import {
  dimension,
  leaseGrant,
  type DeniedBy,
  type LeaseInput,
  type LeaseOutcome,
  type ReleaseInput,
  type LimitPolicy,
  type QuotaStore,
  type ReserveInput,
  type ReserveOutcome,
  type SettleInput,
  type SettleOutcome,
  type WindowSnapshot,
} from './store.js';

interface Entry {
  id: string;
  ts: number;
  tokens: number;
  /** Reservations this entry counts as: 1, or a lease's block. */
  requests: number;
  /** A lease entry: settled only by releaseLease (and `settled` then means released). */
  lease: boolean;
  settled: boolean;
}

interface ScopeWindow {
  /** Sorted by ts ascending. */
  entries: Entry[];
  byId: Map<string, Entry>;
  /** Σ entries[i].tokens. */
  sum: number;
  /** Σ entries[i].requests (= entries.length while no lease is in the window). */
  count: number;
  windowMs: number;
}

export interface MemoryStore extends QuotaStore {
  /** Number of scopes held (for tests and leak checks). */
  size(): number;
}

/** Scopes with nothing left in their window are dropped every this many operations. */
const SWEEP_EVERY = 4096;

export function createMemoryStore(): MemoryStore {
  const scopes = new Map<string, ScopeWindow>();
  let ops = 0;

  const sweep = (now: number): void => {
    for (const [scope, w] of scopes) {
      const last = w.entries[w.entries.length - 1];
      if (!last || last.ts <= now - w.windowMs) scopes.delete(scope);
    }
  };

  /** Returns the scope's window with expired entries removed (undefined when empty). */
  const load = (scope: string, policy: LimitPolicy, now: number): ScopeWindow | undefined => {
    if (++ops % SWEEP_EVERY === 0) sweep(now);
    const w = scopes.get(scope);
    if (!w) return undefined;
    w.windowMs = policy.windowMs;
    const cutoff = now - policy.windowMs;
    let expired = 0;
    while (expired < w.entries.length && w.entries[expired]!.ts <= cutoff) {
      const e = w.entries[expired]!;
      w.sum -= e.tokens;
      w.count -= e.requests;
      w.byId.delete(e.id);
      expired++;
    }
    if (expired > 0) w.entries.splice(0, expired);
    if (w.entries.length === 0) {
      scopes.delete(scope);
      return undefined;
    }
    return w;
  };

  const snapshot = (w: ScopeWindow | undefined, policy: LimitPolicy, now: number): WindowSnapshot => {
    if (!w) return { requests: dimension(policy.requests, 0, now), tokens: dimension(policy.tokens, 0, now) };
    const newest = w.entries[w.entries.length - 1]!;
    let tokensReset = now;
    if (w.sum > 0) {
      // The newest reservation still holding tokens (a cancelled one may have settled to 0).
      let ts = -Infinity;
      for (let i = w.entries.length - 1; i >= 0; i--) {
        const e = w.entries[i]!;
        if (e.tokens > 0) {
          ts = e.ts;
          break;
        }
      }
      tokensReset = ts + policy.windowMs;
    }
    return {
      requests: dimension(policy.requests, w.count, newest.ts + policy.windowMs),
      tokens: dimension(policy.tokens, w.sum, tokensReset),
    };
  };

  const unlimited = (policy: LimitPolicy): boolean => policy.requests === null && policy.tokens === null;

  const reserveSync = (scope: string, input: ReserveInput, policy: LimitPolicy, now: number): ReserveOutcome => {
    const base = { allowed: true, duplicate: false, deniedBy: null, retryAfterMs: 0, retryable: true };
    if (unlimited(policy)) return { ...base, ...snapshot(undefined, policy, now) };
    let w = load(scope, policy, now);
    if (w?.byId.has(input.requestId)) return { ...base, duplicate: true, ...snapshot(w, policy, now) };
    if (policy.tokens !== null && input.tokens > policy.tokens) {
      return { ...base, allowed: false, deniedBy: 'tokens', retryable: false, ...snapshot(w, policy, now) };
    }
    if (policy.requests !== null && policy.requests < 1) {
      return { ...base, allowed: false, deniedBy: 'requests', retryable: false, ...snapshot(w, policy, now) };
    }
    const count = w?.count ?? 0;
    const sum = w?.sum ?? 0;
    const requestsDeny = policy.requests !== null && count + 1 > policy.requests;
    const tokensDeny = policy.tokens !== null && sum + input.tokens > policy.tokens;
    // (An empty window refuses only with a zero limit or an oversized estimate, both handled above.)
    if (w && (requestsDeny || tokensDeny)) {
      let requestsRetry = 0;
      let tokensRetry = 0;
      if (requestsDeny) {
        requestsRetry = requestsRetryMs(w, policy, now);
      }
      if (tokensDeny) {
        let s = sum;
        for (const e of w.entries) {
          s -= e.tokens;
          if (s + input.tokens <= policy.tokens!) {
            tokensRetry = e.ts + policy.windowMs - now;
            break;
          }
        }
      }
      const deniedBy: DeniedBy = requestsDeny && (!tokensDeny || requestsRetry >= tokensRetry) ? 'requests' : 'tokens';
      return {
        ...base,
        allowed: false,
        deniedBy,
        retryAfterMs: Math.max(requestsRetry, tokensRetry),
        ...snapshot(w, policy, now),
      };
    }
    if (!w) {
      w = { entries: [], byId: new Map(), sum: 0, count: 0, windowMs: policy.windowMs };
      scopes.set(scope, w);
    }
    record(w, { id: input.requestId, ts: now, tokens: input.tokens, requests: 1, lease: false, settled: false });
    return { ...base, ...snapshot(w, policy, now) };
  };

  const record = (w: ScopeWindow, entry: Entry): void => {
    insertSorted(w.entries, entry);
    w.byId.set(entry.id, entry);
    w.sum += entry.tokens;
    w.count += entry.requests;
  };

  const leaseSync = (scope: string, input: LeaseInput, policy: LimitPolicy, now: number): LeaseOutcome => {
    let w = load(scope, policy, now);
    if (unlimited(policy) || w?.byId.has(input.leaseId)) {
      return { grantedRequests: 0, grantedTokens: 0, ...snapshot(w, policy, now) };
    }
    const grant = leaseGrant(input, policy, w?.count ?? 0, w?.sum ?? 0);
    if (grant.requests === 0) return { grantedRequests: 0, grantedTokens: 0, ...snapshot(w, policy, now) };
    if (!w) {
      w = { entries: [], byId: new Map(), sum: 0, count: 0, windowMs: policy.windowMs };
      scopes.set(scope, w);
    }
    record(w, { id: input.leaseId, ts: now, tokens: grant.tokens, requests: grant.requests, lease: true, settled: false });
    return { grantedRequests: grant.requests, grantedTokens: grant.tokens, ...snapshot(w, policy, now) };
  };

  const releaseSync = (scope: string, input: ReleaseInput, policy: LimitPolicy, now: number): SettleOutcome => {
    if (unlimited(policy)) return { applied: false, tokens: snapshot(undefined, policy, now).tokens };
    const w = load(scope, policy, now);
    const entry = w?.byId.get(input.leaseId);
    if (!w || !entry || !entry.lease || entry.settled) return { applied: false, tokens: snapshot(w, policy, now).tokens };
    const unusedRequests = Math.min(Math.max(0, input.unusedRequests), entry.requests);
    const tokens = Math.max(0, entry.tokens - input.unusedTokens);
    w.count -= unusedRequests;
    entry.requests -= unusedRequests;
    w.sum += tokens - entry.tokens;
    entry.tokens = tokens;
    entry.settled = true;
    return { applied: true, tokens: snapshot(w, policy, now).tokens };
  };

  const settleSync = (scope: string, input: SettleInput, policy: LimitPolicy, now: number): SettleOutcome => {
    if (unlimited(policy)) return { applied: false, tokens: snapshot(undefined, policy, now).tokens };
    const w = load(scope, policy, now);
    const entry = w?.byId.get(input.requestId);
    let applied = false;
    if (w && entry && !entry.lease && !entry.settled) {
      w.sum += input.tokens - entry.tokens;
      entry.tokens = input.tokens;
      entry.settled = true;
      applied = true;
    }
    return { applied, tokens: snapshot(w, policy, now).tokens };
  };

  return {
    kind: 'memory',
    reserve: async (scope, input, policy, now) => reserveSync(scope, input, policy, now),
    settle: async (scope, input, policy, now) => settleSync(scope, input, policy, now),
    lease: async (scope, input, policy, now) => leaseSync(scope, input, policy, now),
    releaseLease: async (scope, input, policy, now) => releaseSync(scope, input, policy, now),
    peek: async (scope, policy, now) =>
      unlimited(policy) ? snapshot(undefined, policy, now) : snapshot(load(scope, policy, now), policy, now),
    size: () => scopes.size,
    close: async () => {
      scopes.clear();
    },
  };
}

/** ms until one more reservation fits the requests limit: enough of the oldest entries have left. */
function requestsRetryMs(w: ScopeWindow, policy: LimitPolicy, now: number): number {
  const limit = policy.requests!;
  // Without leases every entry is one reservation: the (count - limit + 1)-th oldest must leave.
  if (w.count === w.entries.length) return w.entries[w.count - limit]!.ts + policy.windowMs - now;
  let left = w.count;
  for (const e of w.entries) {
    left -= e.requests;
    if (left + 1 <= limit) return e.ts + policy.windowMs - now;
  }
  return 0;
}

/** Appends, or inserts after every entry with ts ≤ entry.ts (a clock that stepped back). */
function insertSorted(entries: Entry[], entry: Entry): void {
  const last = entries[entries.length - 1];
  if (!last || last.ts <= entry.ts) {
    entries.push(entry);
    return;
  }
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entries[mid]!.ts <= entry.ts) lo = mid + 1;
    else hi = mid;
  }
  entries.splice(lo, 0, entry);
}
