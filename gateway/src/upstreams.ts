/**
 * The gateway's view of auth and quota: typed gRPC clients behind one breaker per target,
 * with the auth and quota failure policies of failure-policy.ts applied to their answers.
 */
import type { Logger } from 'pino';
import { AuthServiceDefinition, type Principal, type Scope } from '../../gen/xerotier/auth/v1/auth_service.js';
import {
  QuotaServiceDefinition,
  type GetLimitsResponse,
  type ReserveResponse,
  type SettleRequest,
} from '../../gen/xerotier/quota/v1/quota_service.js';
import { AppError } from '../../lib/errors/app-error.js';
import { callOptions, createAppClient, createGrpcChannel, type AppClient } from '../../lib/grpc/client.js';
import type { Breaker } from './breaker.js';
import type { LeaseCalls } from './quota-leases.js';
import type { GrpcTlsFiles } from '../../lib/grpc/tls.js';
import { authFailure, quotaFailure, type QuotaFailurePolicy } from './failure-policy.js';
import { closeBreakerOnReconnect } from './breaker-reconnect.js';

export type AuthClient = AppClient<typeof AuthServiceDefinition>;

export interface AuthPort {
  client: AuthClient;
  /**
   * An administration call (key management on behalf of a caller) through the same breaker,
   * deadline and failure mapping as authenticate.
   */
  admin<T>(requestId: string, call: (client: AuthClient, options: ReturnType<typeof callOptions>) => Promise<T>): Promise<T>;
  authenticate(
    input: { apiKey: string; project: string; endpoint: string; scope: Scope },
    requestId: string,
  ): Promise<Principal>;
  close(): void;
}

export interface QuotaPort {
  /** undefined = quota unreachable and the policy admitted the request without limits. */
  reserve(input: { requestId: string; keyId: string; tier: string; tokens: number }): Promise<ReserveResponse | undefined>;
  /** Queues a settlement; queued ones go out together (SettleBatch) within SETTLE_FLUSH_MS. */
  settle(input: { requestId: string; keyId: string; tier: string; tokens: number }): void;
  limits(input: { requestId: string; keyId: string; tier: string }): Promise<GetLimitsResponse | undefined>;
  /** Sends queued settlements and waits for every batch on its way, then closes the channel. */
  close(): Promise<void>;
}

/** Settlements wait at most this long to share one SettleBatch call (one RPC less per request). */
const SETTLE_FLUSH_MS = 5;
const SETTLE_BATCH_MAX = 200;

interface UpstreamOptions {
  address: string;
  tls?: GrpcTlsFiles | undefined;
  serviceToken?: string | undefined;
  timeoutMs: number;
  breaker: Breaker;
  logger: Logger;
}

export function createAuthPort(options: UpstreamOptions): AuthPort {
  const channel = createGrpcChannel(options.address, options.tls);
  closeBreakerOnReconnect(channel, options.breaker, options.logger);
  const client = createAppClient(AuthServiceDefinition, channel, {
    address: options.address,
    target: 'auth service',
    serviceToken: options.serviceToken,
  });
  const guarded = <T>(requestId: string, call: (c: AuthClient, o: ReturnType<typeof callOptions>) => Promise<T>): Promise<T> =>
    options.breaker.run(() => call(client, callOptions(requestId, undefined, options.timeoutMs))).catch((err: unknown) => {
      throw authFailure(err);
    });
  return {
    client,
    admin: guarded,
    async authenticate(input, requestId) {
      const response = await guarded(requestId, (c, o) =>
        c.authenticate({ apiKey: input.apiKey, project: input.project, endpoint: input.endpoint, requiredScope: input.scope }, o),
      );
      if (!response.principal) throw new AppError('internal', 'auth returned no principal');
      return response.principal;
    },
    close: () => channel.close(),
  };
}

export function createQuotaPort(options: UpstreamOptions & { policy: QuotaFailurePolicy }): QuotaPort & LeaseCalls {
  const channel = createGrpcChannel(options.address, options.tls);
  closeBreakerOnReconnect(channel, options.breaker, options.logger);
  const client = createAppClient(QuotaServiceDefinition, channel, {
    address: options.address,
    target: 'quota service',
    serviceToken: options.serviceToken,
  });
  let outage = false;
  const failed = (err: unknown): undefined => {
    const refusal = quotaFailure(options.policy, err);
    if (refusal?.kind === 'invalid_request') throw refusal;
    if (!outage) options.logger.error({ err, policy: options.policy }, 'quota service unreachable');
    outage = true;
    if (refusal) throw refusal;
    return undefined;
  };
  const pending: SettleRequest[] = [];
  let flushTimer: NodeJS.Timeout | undefined;
  /** Batches sent and not answered yet: `close` waits for them, so a drain loses no settlement. */
  const sending = new Set<Promise<void>>();
  const send = async (settlements: SettleRequest[]): Promise<void> => {
    try {
      await options.breaker.run(() => client.settleBatch({ settlements }, callOptions('settle-batch', undefined, options.timeoutMs)));
    } catch (err) {
      // The reservation's estimate stays charged until its window passes: never more than asked.
      options.logger.error({ err, count: settlements.length }, 'quota settlement failed');
    }
  };
  const flush = (): void => {
    clearTimeout(flushTimer);
    flushTimer = undefined;
    const settlements = pending.splice(0, pending.length);
    if (settlements.length === 0) return;
    const p = send(settlements).finally(() => sending.delete(p));
    sending.add(p);
  };
  const recovered = (): void => {
    if (outage) options.logger.info('quota service reachable again');
    outage = false;
  };
  return {
    async reserve(input) {
      try {
        const r = await options.breaker.run(() =>
          client.reserve(
            { requestId: input.requestId, keyId: input.keyId, tier: input.tier, tokenCount: input.tokens },
            callOptions(input.requestId, undefined, options.timeoutMs),
          ),
        );
        recovered();
        return r;
      } catch (err) {
        return failed(err);
      }
    },
    settle(input) {
      pending.push({ requestId: input.requestId, keyId: input.keyId, tier: input.tier, tokenCount: input.tokens });
      if (pending.length >= SETTLE_BATCH_MAX) flush();
      else flushTimer ??= setTimeout(flush, SETTLE_FLUSH_MS);
    },
    async lease(input) {
      try {
        return await options.breaker.run(() =>
          client.lease(
            { keyId: input.keyId, tier: input.tier, requests: input.requests, tokens: input.tokens },
            callOptions('quota-lease', undefined, options.timeoutMs),
          ),
        );
      } catch (err) {
        // No lease: requests keep the per-request Reserve (and its failure policy).
        options.logger.debug({ err }, 'quota lease unavailable');
        return undefined;
      }
    },
    async releaseLease(input) {
      await options.breaker.run(() => client.releaseLease(input, callOptions('quota-release-lease', undefined, options.timeoutMs)));
    },
    async limits(input) {
      try {
        return await options.breaker.run(() =>
          client.getLimits({ keyId: input.keyId, tier: input.tier }, callOptions(input.requestId, undefined, options.timeoutMs)),
        );
      } catch (err) {
        // Limits are informational on read-only routes: never fail the request over them.
        options.logger.debug({ err }, 'quota limits unavailable');
        return undefined;
      }
    },
    async close() {
      flush();
      await Promise.all([...sending]);
      channel.close();
    },
  };
}
