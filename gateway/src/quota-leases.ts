/**
 * Quota leases for hot keys: wraps the quota port so that a key sending many requests is admitted
 * from a small block of its limits held here (a lease, charged at once against the key's window by
 * the quota service) instead of one Reserve round trip per request. Cold keys, and every request a
 * lease cannot cover, keep the exact per-request Reserve.
 *
 * - A key is hot after `hotRequests` requests within `hotWindowMs`. Its lease asks for about what it
 *   used in one lease lifetime (its rate over the last hot window × `lifetimeMs`, with a margin),
 *   tokens in proportion to its recent estimates.
 * - A lease is fetched in the background: a request that finds no lease (or not enough of one)
 *   makes its own Reserve and never waits for a lease. The next lease is fetched when the current
 *   one is half used, so a steady hot key makes about two Lease calls per lifetime and no Reserve.
 * - The quota service grants nothing when the key would keep less than its headroom afterwards;
 *   the key then asks again only after one lifetime, reserving per request meanwhile: the last part
 *   of a window is admitted exactly, and a refusal never reaches the client from a lease (a denial
 *   is always a real Reserve denial, with its Retry-After).
 * - A leased request's settlement adjusts the lease locally (its estimate minus the real usage).
 *   A lease stops admitting at the end of its lifetime or when used up; once its last request has
 *   settled it is released: unused requests and tokens (negative when the usage exceeded the
 *   estimates) go back with ReleaseLease. `close` releases everything (gateway drain), counting
 *   the estimates of requests still running as used.
 * - Rate-limit headers come from the last status the service reported for the key, with the
 *   requests and tokens still unused in this replica's leases added back to `remaining`.
 */
import type { Logger } from 'pino';
import {
  Decision,
  type LeaseResponse,
  type LimitStatus,
} from '../../gen/xerotier/quota/v1/quota_service.js';
import type { QuotaPort } from './upstreams.js';

export interface LeaseCalls {
  /** undefined when the quota service could not be asked (treated as a refusal). */
  lease(input: { keyId: string; tier: string; requests: number; tokens: number }): Promise<LeaseResponse | undefined>;
  /** Best effort: a lost release leaves the lease charged as granted until its window passes. */
  releaseLease(input: { leaseId: string; keyId: string; tier: string; unusedRequests: number; unusedTokens: number }): Promise<void>;
}

export interface QuotaLeaseOptions {
  /** How long a lease admits (ms). */
  lifetimeMs: number;
  /** Requests within `hotWindowMs` that make a key hot. */
  hotRequests: number;
  hotWindowMs: number;
  clock: () => number;
  logger: Logger;
  /** Each admission the port decided: from a lease, or by a per-request Reserve. */
  onAdmission?: ((source: 'lease' | 'reserve') => void) | undefined;
}

interface Lease {
  id: string;
  grantedRequests: number;
  /** Requests admitted from it. */
  admitted: number;
  /** Granted tokens minus the estimates (then real usage) of its requests; negative = overrun. */
  tokensLeft: number;
  /** Admitted, not settled yet. */
  inflight: number;
  /** Request ids admitted from it and not settled yet. */
  running: Set<string>;
  /** Stops admitting (lifetime over, used up, or closing). */
  closed: boolean;
  released: boolean;
  timer: NodeJS.Timeout | undefined;
  /** Releases it even if some of its requests never settle (their estimates count as used). */
  deadline: NodeJS.Timeout | undefined;
}

interface KeyState {
  keyId: string;
  tier: string;
  /** Arrivals in the current and the previous hot-window bucket. */
  bucketStart: number;
  requests: number;
  tokens: number;
  previousRequests: number;
  previousTokens: number;
  leases: Lease[];
  fetching: boolean;
  /** No lease is asked before this time (after a refusal or a failure). */
  quietUntil: number;
  requestsStatus: LimitStatus | undefined;
  tokensStatus: LimitStatus | undefined;
  lastSeen: number;
}

/** A lease asks for this much more than the key used in one lifetime. */
const LEASE_MARGIN = 1.25;
/**
 * A lease is released at the latest this long after its lifetime, requests still running or not
 * (their estimates then stay charged): well inside the 60 s window its charge lives in, so the
 * release still lands.
 */
const STRAGGLER_MS = 30_000;

export interface LeasingQuotaPort extends QuotaPort {
  /** Leases currently held (tests, metrics). */
  heldLeases(): number;
}

export function createLeasingQuotaPort(inner: QuotaPort, calls: LeaseCalls, options: QuotaLeaseOptions): LeasingQuotaPort {
  const { clock, lifetimeMs, hotRequests, hotWindowMs } = options;
  const keys = new Map<string, KeyState>();
  /** Leased request id → its lease and estimate, until it settles. */
  const leased = new Map<string, { lease: Lease; key: KeyState; estimate: number }>();
  const releasing = new Set<Promise<void>>();
  const fetches = new Set<Promise<void>>();
  let closing = false;

  const roll = (k: KeyState, now: number): void => {
    const elapsed = now - k.bucketStart;
    if (elapsed < hotWindowMs) return;
    const keep = elapsed < 2 * hotWindowMs;
    k.previousRequests = keep ? k.requests : 0;
    k.previousTokens = keep ? k.tokens : 0;
    k.requests = 0;
    k.tokens = 0;
    k.bucketStart = keep ? k.bucketStart + hotWindowMs : now;
  };

  const release = (k: KeyState, lease: Lease): void => {
    if (lease.released) return;
    lease.released = true;
    clearTimeout(lease.timer);
    clearTimeout(lease.deadline);
    for (const id of lease.running) leased.delete(id);
    lease.running.clear();
    k.leases = k.leases.filter((l) => l !== lease);
    const unusedRequests = lease.grantedRequests - lease.admitted;
    if (lease.id === '') return; // unlimited key: nothing was charged
    const p = calls
      .releaseLease({ leaseId: lease.id, keyId: k.keyId, tier: k.tier, unusedRequests, unusedTokens: lease.tokensLeft })
      .catch((err: unknown) => options.logger.warn({ err }, 'quota lease release failed'))
      .finally(() => releasing.delete(p));
    releasing.add(p);
  };

  const closeLease = (k: KeyState, lease: Lease): void => {
    lease.closed = true;
    clearTimeout(lease.timer);
    if (lease.inflight === 0) release(k, lease);
  };

  /** About what the key uses in one lease lifetime, from its last full and current bucket. */
  const wanted = (k: KeyState, now: number): { requests: number; tokens: number } => {
    const span = hotWindowMs + Math.max(1, now - k.bucketStart);
    const requests = k.previousRequests + k.requests;
    const tokens = k.previousTokens + k.tokens;
    const asked = Math.max(1, Math.ceil(((requests * lifetimeMs) / span) * LEASE_MARGIN));
    const perRequest = requests === 0 ? 0 : tokens / requests;
    return { requests: asked, tokens: Math.ceil(asked * perRequest) };
  };

  const open = (k: KeyState): { requests: number; tokens: number } => {
    let requests = 0;
    let tokens = 0;
    for (const l of k.leases) {
      if (l.closed) continue;
      requests += l.grantedRequests - l.admitted;
      tokens += Math.max(0, l.tokensLeft);
    }
    return { requests, tokens };
  };

  const fetchLease = (k: KeyState, now: number): void => {
    if (k.fetching || closing || now < k.quietUntil) return;
    const want = wanted(k, now);
    k.fetching = true;
    const p: Promise<void> = calls
      .lease({ keyId: k.keyId, tier: k.tier, requests: want.requests, tokens: want.tokens })
      .catch((err: unknown) => {
        options.logger.warn({ err }, 'quota lease failed');
        return undefined;
      })
      .then((r) => {
        k.fetching = false;
        if (!r || r.grantedRequests <= 0) {
          // Too close to the limit (or quota unreachable): per-request Reserve for a lifetime.
          k.quietUntil = clock() + lifetimeMs;
          if (r) {
            k.requestsStatus = r.requestsStatus;
            k.tokensStatus = r.tokensStatus;
          }
          return;
        }
        k.requestsStatus = r.requestsStatus;
        k.tokensStatus = r.tokensStatus;
        const lease: Lease = {
          id: r.leaseId,
          grantedRequests: r.grantedRequests,
          admitted: 0,
          tokensLeft: r.grantedTokens,
          inflight: 0,
          running: new Set(),
          closed: false,
          released: false,
          timer: undefined,
          deadline: undefined,
        };
        k.leases.push(lease);
        // Returned early when the drain began while it was on its way.
        if (closing) {
          closeLease(k, lease);
          return;
        }
        lease.timer = setTimeout(() => closeLease(k, lease), lifetimeMs);
        lease.timer.unref();
        lease.deadline = setTimeout(() => {
          lease.closed = true;
          release(k, lease);
        }, lifetimeMs + STRAGGLER_MS);
        lease.deadline.unref();
      })
      .finally(() => fetches.delete(p));
    fetches.add(p);
  };

  const withUnused = (s: LimitStatus | undefined, unused: number): LimitStatus | undefined =>
    s && !s.unlimited ? { ...s, remaining: s.remaining + unused } : s;

  /** Keys idle for a while are forgotten (their leases are released by their own timers). */
  const sweep = setInterval(() => {
    const now = clock();
    for (const [id, k] of keys) if (k.leases.length === 0 && !k.fetching && now - k.lastSeen > 2 * hotWindowMs) keys.delete(id);
  }, Math.max(1_000, 2 * hotWindowMs));
  sweep.unref();

  return {
    async reserve(input) {
      const now = clock();
      const id = `${input.tier}\u0000${input.keyId}`;
      let k = keys.get(id);
      if (!k) {
        k = {
          keyId: input.keyId,
          tier: input.tier,
          bucketStart: now,
          requests: 0,
          tokens: 0,
          previousRequests: 0,
          previousTokens: 0,
          leases: [],
          fetching: false,
          quietUntil: 0,
          requestsStatus: undefined,
          tokensStatus: undefined,
          lastSeen: now,
        };
        keys.set(id, k);
      }
      k.lastSeen = now;
      roll(k, now);
      k.requests += 1;
      k.tokens += input.tokens;

      const lease = closing ? undefined : k.leases.find((l) => !l.closed && l.admitted < l.grantedRequests && l.tokensLeft >= input.tokens);
      const hot = k.previousRequests + k.requests >= hotRequests;
      if (lease) {
        lease.admitted += 1;
        lease.tokensLeft -= input.tokens;
        lease.inflight += 1;
        lease.running.add(input.requestId);
        leased.set(input.requestId, { lease, key: k, estimate: input.tokens });
        if (lease.admitted >= lease.grantedRequests) closeLease(k, lease);
        const left = open(k);
        // Refill before it runs out: the next lease is on its way once half of one lifetime's use is left.
        if (left.requests * 2 < wanted(k, now).requests / LEASE_MARGIN) fetchLease(k, now);
        options.onAdmission?.('lease');
        return {
          decision: Decision.DECISION_ALLOW,
          requests: withUnused(k.requestsStatus, left.requests),
          tokens: withUnused(k.tokensStatus, left.tokens),
          retryAfterMs: 0,
          retryable: true,
          deniedBy: '',
        };
      }
      if (hot) fetchLease(k, now);
      options.onAdmission?.('reserve');
      const r = await inner.reserve(input);
      if (r) {
        k.requestsStatus = r.requests;
        k.tokensStatus = r.tokens;
      }
      return r;
    },

    settle(input) {
      const entry = leased.get(input.requestId);
      if (!entry) {
        inner.settle(input);
        return;
      }
      leased.delete(input.requestId);
      const { lease, key } = entry;
      lease.tokensLeft += entry.estimate - input.tokens;
      lease.inflight -= 1;
      lease.running.delete(input.requestId);
      if (lease.closed && lease.inflight === 0) release(key, lease);
    },

    limits: (input) => inner.limits(input),

    heldLeases: () => {
      let n = 0;
      for (const k of keys.values()) n += k.leases.length;
      return n;
    },

    async close() {
      closing = true;
      clearInterval(sweep);
      // A lease on its way is released as soon as it arrives (closing is set).
      await Promise.all([...fetches]);
      // Requests still running keep their estimates charged: release every lease now.
      for (const k of keys.values()) {
        for (const lease of [...k.leases]) {
          lease.closed = true;
          release(k, lease);
        }
      }
      leased.clear();
      await Promise.all([...releasing]);
      await inner.close();
    },
  };
}
