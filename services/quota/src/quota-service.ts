/**
 * QuotaService: validates calls, resolves the tier's limits, asks the store, and maps the outcome
 * to proto messages. Over-limit is data (DECISION_DENY), never a gRPC error, so callers and
 * breakers never mistake a tenant's limit for a failing service; errors
 * mean a bad call (INVALID_ARGUMENT) or a broken service (INTERNAL).
 *
 * Limits are kept per (tier, API key): the scope `<tier>:<key id>`.
 */
import { randomUUID } from 'node:crypto';
import { recordQuotaDecision, type QuotaMetrics } from './metrics.js';
import type { CallContext } from 'nice-grpc';
import {
  Decision,
  type GetLimitsRequest,
  type GetLimitsResponse,
  type LeaseRequest,
  type LeaseResponse,
  type LimitStatus,
  type ReleaseLeaseRequest,
  type ReleaseLeaseResponse,
  type QuotaServiceImplementation,
  type ReserveRequest,
  type ReserveResponse,
  type SettleBatchRequest,
  type SettleBatchResponse,
  type SettleRequest,
  type SettleResponse,
} from '../../../gen/xerotier/quota/v1/quota_service.js';
import { invalidRequest } from '../../../lib/errors/app-error.js';
import type { RequestContext } from '../../../lib/grpc/server.js';
import type { Tier, TierTable } from '../../../lib/tiers/tier-table.js';
import type { Clock } from './clock.js';
import type { StoreStats } from './failover-store.js';
import { WINDOW_MS, type DimensionState, type LimitPolicy, type QuotaStore } from './stores/store.js';

/** Largest SettleBatch accepted (a gateway flushes far smaller batches). */
const MAX_SETTLE_BATCH = 1000;
/** Largest lease asked: a gateway sizes leases to a fraction of a second of traffic. */
const MAX_LEASE_REQUESTS = 1_000_000;
/** Lease ids cannot collide with the gateway's request ids (UUIDs and their retries). */
const LEASE_ID_PREFIX = 'lease:';

export interface QuotaServiceDeps {
  store: QuotaStore;
  tiers: TierTable;
  clock: Clock;
  /** Window length (ms); the tier table's limits are per minute. */
  windowMs?: number;
  /**
   * Share of each limit that must stay remaining after a lease is granted (QUOTA_LEASE_HEADROOM,
   * default 0.25): below it every request is reserved one by one, so a window's last part is
   * admitted exactly. 1 = never lease.
   */
  leaseHeadroom?: number;
  /**
   * Smallest requests/min limit a lease is granted for (QUOTA_LEASE_MIN_LIMIT, default 10,000):
   * below it every request is reserved one by one. A lease is worth its cost (its unused part is
   * charged while held, so the window's figures lag by up to a lease lifetime) only where
   * per-request calls are many: 10,000/min is 167 requests/s; a key of 1,000/min averages 17/s,
   * a few ms of quota CPU per second.
   */
  leaseMinLimit?: number;
  /** Store health counters (Redis mode); zeros otherwise. */
  stats?: () => StoreStats;
  metrics?: QuotaMetrics | undefined;
}

export interface QuotaStats extends StoreStats {
  store: 'memory' | 'redis';
}

export interface QuotaService {
  impl: QuotaServiceImplementation<RequestContext>;
  stats(): QuotaStats;
}

const MAX_ID_LENGTH = 256;

export function createQuotaService(deps: QuotaServiceDeps): QuotaService {
  const { store, tiers, clock } = deps;
  const windowMs = deps.windowMs ?? WINDOW_MS;
  const headroom = deps.leaseHeadroom ?? 0.25;
  const leaseMinLimit = deps.leaseMinLimit ?? 10_000;

  const policyOf = (slug: string): { tier: Tier; policy: LimitPolicy } => {
    const tier = tiers.get(slug);
    if (!tier) throw invalidRequest(`unknown tier '${slug.slice(0, 64)}'`, { param: 'tier', code: 'unknown_tier' });
    return { tier, policy: { requests: tier.requestsPerMinute, tokens: tier.tokensPerMinute, windowMs } };
  };
  const scopeOf = (tier: Tier, keyId: string): string => `${tier.slug}:${keyId}`;
  const unlimited = (p: LimitPolicy): boolean => p.requests === null && p.tokens === null;
  const now = (): number => Math.floor(clock());

  const status = (d: DimensionState, at: number): LimitStatus =>
    d.limit === null
      ? { limit: 0, remaining: 0, resetTime: new Date(at), unlimited: true }
      : { limit: d.limit, remaining: d.remaining, resetTime: new Date(d.resetAt), unlimited: false };
  const unlimitedStatus = (at: number): LimitStatus => ({ limit: 0, remaining: 0, resetTime: new Date(at), unlimited: true });

  const settleOne = async (request: SettleRequest): Promise<SettleResponse> => {
    requireId(request.requestId, 'request_id');
    requireId(request.keyId, 'key_id');
    requireTokens(request.tokenCount);
    const { tier, policy } = policyOf(request.tier);
    const at = now();
    if (unlimited(policy)) return { applied: false, tokens: unlimitedStatus(at) };
    const r = await store.settle(
      scopeOf(tier, request.keyId),
      { requestId: request.requestId, tokens: request.tokenCount },
      policy,
      at,
    );
    return { applied: r.applied, tokens: status(r.tokens, at) };
  };

  const impl: QuotaServiceImplementation<RequestContext> = {
    async reserve(request: ReserveRequest, context: CallContext & RequestContext): Promise<ReserveResponse> {
      requireId(request.requestId, 'request_id');
      requireId(request.keyId, 'key_id');
      requireTokens(request.tokenCount);
      const { tier, policy } = policyOf(request.tier);
      const at = now();
      if (unlimited(policy)) {
        // Self-hosted: nothing to count, and no dependency on the store at all.
        if (deps.metrics) recordQuotaDecision(deps.metrics, 'allow', tier.slug);
        return {
          decision: Decision.DECISION_ALLOW,
          requests: unlimitedStatus(at),
          tokens: unlimitedStatus(at),
          retryAfterMs: 0,
          retryable: true,
          deniedBy: '',
        };
      }
      const r = await store.reserve(
        scopeOf(tier, request.keyId),
        { requestId: request.requestId, tokens: request.tokenCount },
        policy,
        at,
      );
      if (deps.metrics) recordQuotaDecision(deps.metrics, r.allowed ? 'allow' : 'deny', tier.slug);
      if (!r.allowed) {
        context.logger.debug(
          { keyId: request.keyId, tier: tier.slug, deniedBy: r.deniedBy, retryAfterMs: r.retryAfterMs, retryable: r.retryable },
          'quota denied',
        );
      }
      return {
        decision: r.allowed ? Decision.DECISION_ALLOW : Decision.DECISION_DENY,
        requests: status(r.requests, at),
        tokens: status(r.tokens, at),
        retryAfterMs: r.retryAfterMs,
        retryable: r.retryable,
        deniedBy: r.deniedBy ?? '',
      };
    },

    settle: (request: SettleRequest) => settleOne(request),

    async settleBatch(request: SettleBatchRequest): Promise<SettleBatchResponse> {
      if (request.settlements.length > MAX_SETTLE_BATCH) {
        throw invalidRequest(`at most ${MAX_SETTLE_BATCH} settlements per batch`, { param: 'settlements' });
      }
      // Each settlement is independent and idempotent; the store serialises per scope.
      const results = await Promise.all(request.settlements.map(settleOne));
      return { results };
    },

    async lease(request: LeaseRequest): Promise<LeaseResponse> {
      requireId(request.keyId, 'key_id');
      if (!Number.isSafeInteger(request.requests) || request.requests < 1 || request.requests > MAX_LEASE_REQUESTS) {
        throw invalidRequest(`requests must be an integer from 1 to ${MAX_LEASE_REQUESTS}`, { param: 'requests' });
      }
      if (!Number.isSafeInteger(request.tokens) || request.tokens < 0) {
        throw invalidRequest('tokens must be a non-negative integer', { param: 'tokens' });
      }
      const { tier, policy } = policyOf(request.tier);
      const at = now();
      if (unlimited(policy)) {
        // Nothing is counted for an unlimited key: lend what was asked, nothing to release.
        if (deps.metrics) deps.metrics.quotaLeasesTotal.inc({ outcome: 'granted', tier: tier.slug });
        return {
          leaseId: '',
          grantedRequests: request.requests,
          grantedTokens: request.tokens,
          expireTime: new Date(at + windowMs),
          requestsStatus: unlimitedStatus(at),
          tokensStatus: unlimitedStatus(at),
        };
      }
      if (policy.requests !== null && policy.requests < leaseMinLimit) {
        if (deps.metrics) deps.metrics.quotaLeasesTotal.inc({ outcome: 'refused', tier: tier.slug });
        const s = await store.peek(scopeOf(tier, request.keyId), policy, at);
        return {
          leaseId: '',
          grantedRequests: 0,
          grantedTokens: 0,
          expireTime: new Date(at + windowMs),
          requestsStatus: status(s.requests, at),
          tokensStatus: status(s.tokens, at),
        };
      }
      const leaseId = `${LEASE_ID_PREFIX}${randomUUID()}`;
      const r = await store.lease(
        scopeOf(tier, request.keyId),
        { leaseId, requests: request.requests, tokens: request.tokens, headroom },
        policy,
        at,
      );
      const granted = r.grantedRequests > 0;
      if (deps.metrics) deps.metrics.quotaLeasesTotal.inc({ outcome: granted ? 'granted' : 'refused', tier: tier.slug });
      return {
        leaseId: granted ? leaseId : '',
        grantedRequests: r.grantedRequests,
        grantedTokens: r.grantedTokens,
        expireTime: new Date(at + windowMs),
        requestsStatus: status(r.requests, at),
        tokensStatus: status(r.tokens, at),
      };
    },

    async releaseLease(request: ReleaseLeaseRequest): Promise<ReleaseLeaseResponse> {
      requireId(request.leaseId, 'lease_id');
      requireId(request.keyId, 'key_id');
      if (!Number.isSafeInteger(request.unusedRequests) || request.unusedRequests < 0) {
        throw invalidRequest('unused_requests must be a non-negative integer', { param: 'unused_requests' });
      }
      if (!Number.isSafeInteger(request.unusedTokens)) {
        throw invalidRequest('unused_tokens must be an integer', { param: 'unused_tokens' });
      }
      const { tier, policy } = policyOf(request.tier);
      if (unlimited(policy) || !request.leaseId.startsWith(LEASE_ID_PREFIX)) return { applied: false };
      const r = await store.releaseLease(
        scopeOf(tier, request.keyId),
        { leaseId: request.leaseId, unusedRequests: request.unusedRequests, unusedTokens: request.unusedTokens },
        policy,
        now(),
      );
      return { applied: r.applied };
    },

    async getLimits(request: GetLimitsRequest): Promise<GetLimitsResponse> {
      requireId(request.keyId, 'key_id');
      const { tier, policy } = policyOf(request.tier);
      const at = now();
      if (unlimited(policy)) return { requests: unlimitedStatus(at), tokens: unlimitedStatus(at) };
      const s = await store.peek(scopeOf(tier, request.keyId), policy, at);
      return { requests: status(s.requests, at), tokens: status(s.tokens, at) };
    },
  };

  return {
    impl,
    stats: () => ({
      store: store.kind,
      ...(deps.stats?.() ?? { storeErrors: 0, outages: 0, degraded: false, pendingSettlements: 0 }),
    }),
  };
}

function requireId(value: string, param: string): void {
  if (value.length === 0) throw invalidRequest(`${param} is required`, { param });
  if (value.length > MAX_ID_LENGTH) throw invalidRequest(`${param} is longer than ${MAX_ID_LENGTH} characters`, { param });
}

function requireTokens(value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw invalidRequest('token_count must be a non-negative integer', { param: 'token_count' });
  }
}
