/**
 * The Redis failure policy, in one place: wraps the Redis store so that every decision returns
 * within about the Redis command timeout whatever Redis does: down, refusing or frozen
 * (test/quota/redis-outage.test.ts kills and SIGSTOPs a real Redis).
 *
 * - `fail-open-local`: while Redis fails, decide with an in-memory store at limit / divisor per
 *   replica (divisor = replica count ⇒ the fleet admits at most the limit during the outage).
 * - `fail-closed`: while Redis fails, refuse everything (retryable, retry after 1 s).
 *
 * Settlements that cannot reach Redis are kept (bounded) and replayed once it is back: Settle is
 * idempotent and lands in its reservation's window, so a replay is always safe, and one for a
 * reservation that has left the window is dropped. An outage is logged once when it starts and
 * once when it ends; every failed or skipped Redis call counts in `storeErrors`.
 */
import type { Logger } from 'pino';
import type { Clock } from './clock.js';
import type { FailurePolicy } from './config.js';
import { createMemoryStore } from './stores/memory.js';
import {
  dimension,
  type DimensionState,
  type LimitPolicy,
  type QuotaStore,
  type ReserveInput,
  type ReserveOutcome,
  type SettleInput,
  type SettleOutcome,
  type WindowSnapshot,
} from './stores/store.js';

/** Refusal delay under `fail-closed`, and for requests only Redis could admit under `fail-open-local`. */
export const OUTAGE_RETRY_AFTER_MS = 1_000;

export interface PrimaryStore extends QuotaStore {
  /** False when a call would fail at once (disconnected): skip it without waiting. */
  ready(): boolean;
}

export interface FailoverOptions {
  primary: PrimaryStore;
  policy: FailurePolicy;
  /** Local limits during an outage are floor(limit / divisor), at least 1. */
  localDivisor: number;
  /** Budget of one Redis call (ms): QUOTA_REDIS_TIMEOUT_MS, see withLagAwareTimeout. */
  timeoutMs: number;
  logger: Logger;
  clock: Clock;
  /** Settlements kept for replay at most (oldest dropped first). */
  maxPendingSettlements?: number;
  /** Called on every failed store call (metrics). */
  onStoreError?: (() => void) | undefined;
}

export interface StoreStats {
  /** Redis calls that failed, timed out or were skipped while disconnected (cumulative). */
  storeErrors: number;
  /** Outages seen (cumulative). */
  outages: number;
  /** True while deciding without Redis. */
  degraded: boolean;
  pendingSettlements: number;
}

export interface FailoverStore extends QuotaStore {
  stats(): StoreStats;
}

interface PendingSettlement {
  scope: string;
  input: SettleInput;
  policy: LimitPolicy;
  at: number;
}

class StoreTimeoutError extends Error {
  constructor(ms: number) {
    super(`quota store call exceeded ${ms} ms`);
    this.name = 'StoreTimeoutError';
  }
}

class StoreNotReadyError extends Error {
  constructor() {
    super('quota store is not connected');
    this.name = 'StoreNotReadyError';
  }
}

export function createFailoverStore(options: FailoverOptions): FailoverStore {
  const { primary, policy: failurePolicy, logger, clock } = options;
  const local = createMemoryStore();
  const maxPending = options.maxPendingSettlements ?? 10_000;
  let storeErrors = 0;
  let outages = 0;
  let outageSince: number | undefined;
  let errorsAtOutageStart = 0;
  let pending: PendingSettlement[] = [];
  let replaying: Promise<void> | undefined;
  let closed = false;

  const failed = (err: unknown): void => {
    storeErrors++;
    options.onStoreError?.();
    if (outageSince !== undefined) return;
    outageSince = clock();
    errorsAtOutageStart = storeErrors - 1;
    outages++;
    logger.error(
      { err, policy: failurePolicy, localDivisor: options.localDivisor },
      failurePolicy === 'fail-open-local'
        ? 'quota store unreachable: enforcing local limits (limit / divisor) until it returns'
        : 'quota store unreachable: refusing requests until it returns',
    );
  };

  const succeeded = (): void => {
    if (outageSince === undefined) return;
    logger.info(
      { outageMs: clock() - outageSince, storeErrors: storeErrors - errorsAtOutageStart, pendingSettlements: pending.length },
      'quota store reachable again: full enforcement resumed',
    );
    outageSince = undefined;
    if (pending.length > 0 && !replaying) {
      replaying = replay().finally(() => {
        replaying = undefined;
      });
    }
  };

  async function call<T>(fn: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> {
    if (closed || !primary.ready()) {
      failed(new StoreNotReadyError());
      return { ok: false };
    }
    try {
      const value = await withLagAwareTimeout(fn(), options.timeoutMs);
      succeeded();
      return { ok: true, value };
    } catch (err) {
      failed(err);
      return { ok: false };
    }
  }

  async function replay(): Promise<void> {
    while (pending.length > 0 && !closed && outageSince === undefined) {
      const item = pending[0]!;
      const now = clock();
      if (now - item.at < item.policy.windowMs) {
        const result = await call(() => primary.settle(item.scope, item.input, item.policy, now));
        if (!result.ok) return; // outage again: keep the rest for the next recovery
      }
      pending.shift();
    }
  }

  const scaled = (policy: LimitPolicy): LimitPolicy => ({
    requests: policy.requests === null ? null : Math.max(1, Math.floor(policy.requests / options.localDivisor)),
    tokens: policy.tokens === null ? null : Math.max(1, Math.floor(policy.tokens / options.localDivisor)),
    windowMs: policy.windowMs,
  });
  /** Local counts, but the tier's limits in what clients see (remaining is the local one). */
  const relabel = (d: DimensionState, limit: number | null): DimensionState => ({ ...d, limit });
  const closedDimension = (limit: number | null, now: number): DimensionState =>
    limit === null ? dimension(null, 0, now) : { limit, used: 0, remaining: 0, resetAt: now + OUTAGE_RETRY_AFTER_MS };

  const localPeek = async (scope: string, policy: LimitPolicy, now: number): Promise<WindowSnapshot> => {
    if (failurePolicy === 'fail-closed') {
      return { requests: closedDimension(policy.requests, now), tokens: closedDimension(policy.tokens, now) };
    }
    const s = await local.peek(scope, scaled(policy), now);
    return { requests: relabel(s.requests, policy.requests), tokens: relabel(s.tokens, policy.tokens) };
  };

  const localReserve = async (
    scope: string,
    input: ReserveInput,
    policy: LimitPolicy,
    now: number,
  ): Promise<ReserveOutcome> => {
    const infeasible = policy.tokens !== null && input.tokens > policy.tokens;
    if (failurePolicy === 'fail-closed' || infeasible) {
      return {
        allowed: false,
        duplicate: false,
        deniedBy: infeasible ? 'tokens' : 'requests',
        retryAfterMs: infeasible ? 0 : OUTAGE_RETRY_AFTER_MS,
        retryable: !infeasible,
        ...(await localPeek(scope, policy, now)),
      };
    }
    const r = await local.reserve(scope, input, scaled(policy), now);
    const outcome: ReserveOutcome = {
      ...r,
      requests: relabel(r.requests, policy.requests),
      tokens: relabel(r.tokens, policy.tokens),
    };
    // Fits the tier but not the local share: only Redis can admit it, so retry soon.
    if (!r.allowed && !r.retryable) return { ...outcome, retryable: true, retryAfterMs: OUTAGE_RETRY_AFTER_MS };
    return outcome;
  };

  const localSettle = async (scope: string, input: SettleInput, policy: LimitPolicy, now: number): Promise<SettleOutcome> => {
    // Reservations made locally during an outage are settled locally, whatever the policy is now.
    if (local.size() === 0) return { applied: false, tokens: (await localPeek(scope, policy, now)).tokens };
    const r = await local.settle(scope, input, scaled(policy), now);
    return { applied: r.applied, tokens: relabel(r.tokens, policy.tokens) };
  };

  return {
    kind: 'redis',
    async reserve(scope, input, policy, now) {
      const r = await call(() => primary.reserve(scope, input, policy, now));
      return r.ok ? r.value : localReserve(scope, input, policy, now);
    },
    async settle(scope, input, policy, now) {
      const r = await call(() => primary.settle(scope, input, policy, now));
      if (r.ok && r.value.applied) return r.value;
      const l = await localSettle(scope, input, policy, now);
      if (l.applied) return l;
      if (r.ok) return r.value;
      pending.push({ scope, input, policy, at: now });
      if (pending.length > maxPending) pending = pending.slice(pending.length - maxPending);
      return l;
    },
    async lease(scope, input, policy, now) {
      // No leases while deciding without Redis: a replica's local share is too small to lend,
      // and every request then goes through the (local) per-request decision.
      const r = await call(() => primary.lease(scope, input, policy, now));
      return r.ok ? r.value : { grantedRequests: 0, grantedTokens: 0, ...(await localPeek(scope, policy, now)) };
    },
    async releaseLease(scope, input, policy, now) {
      // A release that cannot reach Redis is dropped: the lease stays charged as granted until its
      // window passes (never more admitted than charged; only tokens used beyond a lease go uncharged).
      const r = await call(() => primary.releaseLease(scope, input, policy, now));
      return r.ok ? r.value : { applied: false, tokens: (await localPeek(scope, policy, now)).tokens };
    },
    async peek(scope, policy, now) {
      const r = await call(() => primary.peek(scope, policy, now));
      return r.ok ? r.value : localPeek(scope, policy, now);
    },
    stats: () => ({ storeErrors, outages, degraded: outageSince !== undefined, pendingSettlements: pending.length }),
    async close() {
      closed = true;
      await replaying;
      await local.close();
      await primary.close();
    },
  };
}

/**
 * Rejects when `promise` has not settled `ms` after the call, *unless the reply is already here*.
 * A plain timer is wrong under load: when this process's event loop is busy for longer than `ms`
 * (a burst of hundreds of calls), timers run before the poll phase that would read Redis's
 * replies, so every call "times out" while Redis answered in 1 ms, and decisions fall back to
 * local limits for no reason (measured: 3 in-process replicas × 1,000-call burst admitted 180, not 60).
 * So when the timer fires we let pending I/O be read first (setImmediate runs after the poll phase)
 * and only then give up. Latency is still bounded by `ms` plus this process's own lag.
 */
export function withLagAwareTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      setImmediate(() => {
        if (settled) return;
        settled = true;
        reject(new StoreTimeoutError(ms));
      });
    }, ms);
    promise.then(
      (value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
