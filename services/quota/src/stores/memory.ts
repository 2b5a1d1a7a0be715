/**
 * In-process sliding-window log (the embedded default, and the per-replica fallback during a
 * Redis outage). Same semantics as the Redis scripts, documented in store.ts; operations are
 * synchronous under the hood, so concurrent calls in one process are trivially atomic.
 */
import {
  dimension,
  type DeniedBy,
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
  settled: boolean;
}

interface ScopeWindow {
  /** Sorted by ts ascending. */
  entries: Entry[];
  byId: Map<string, Entry>;
  /** Σ entries[i].tokens. */
  sum: number;
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
      requests: dimension(policy.requests, w.entries.length, newest.ts + policy.windowMs),
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
    const count = w?.entries.length ?? 0;
    const sum = w?.sum ?? 0;
    const requestsDeny = policy.requests !== null && count + 1 > policy.requests;
    const tokensDeny = policy.tokens !== null && sum + input.tokens > policy.tokens;
    // (An empty window refuses only with a zero limit or an oversized estimate, both handled above.)
    if (w && (requestsDeny || tokensDeny)) {
      let requestsRetry = 0;
      let tokensRetry = 0;
      if (requestsDeny) {
        // The (count - limit + 1)-th oldest must leave before one more fits.
        requestsRetry = w.entries[count - policy.requests!]!.ts + policy.windowMs - now;
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
      w = { entries: [], byId: new Map(), sum: 0, windowMs: policy.windowMs };
      scopes.set(scope, w);
    }
    const entry: Entry = { id: input.requestId, ts: now, tokens: input.tokens, settled: false };
    insertSorted(w.entries, entry);
    w.byId.set(entry.id, entry);
    w.sum += entry.tokens;
    return { ...base, ...snapshot(w, policy, now) };
  };

  const settleSync = (scope: string, input: SettleInput, policy: LimitPolicy, now: number): SettleOutcome => {
    if (unlimited(policy)) return { applied: false, tokens: snapshot(undefined, policy, now).tokens };
    const w = load(scope, policy, now);
    const entry = w?.byId.get(input.requestId);
    let applied = false;
    if (w && entry && !entry.settled) {
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
    peek: async (scope, policy, now) =>
      unlimited(policy) ? snapshot(undefined, policy, now) : snapshot(load(scope, policy, now), policy, now),
    size: () => scopes.size,
    close: async () => {
      scopes.clear();
    },
  };
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
