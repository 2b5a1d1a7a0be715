/**
 * The gateway's view of auth and quota: typed gRPC clients behind one breaker per target,
 * with the quota failure policy (GATEWAY_QUOTA_FAILURE_POLICY) applied in one place.
 */
import type { Logger } from 'pino';
import { AuthServiceDefinition, type Principal, type Scope } from '../../gen/xerotier/auth/v1/auth_service.js';
import {
  QuotaServiceDefinition,
  type GetLimitsResponse,
  type ReserveResponse,
} from '../../gen/xerotier/quota/v1/quota_service.js';
import { AppError, isAppError } from '../../lib/errors/app-error.js';
import { callOptions, createAppClient, createGrpcChannel, type AppClient } from '../../lib/grpc/client.js';
import type { Breaker } from './breaker.js';

export interface AuthPort {
  client: AppClient<typeof AuthServiceDefinition>;
  authenticate(
    input: { apiKey: string; project: string; endpoint: string; scope: Scope },
    requestId: string,
  ): Promise<Principal>;
  close(): void;
}

export interface QuotaPort {
  /** undefined = quota unreachable and the policy admitted the request without limits. */
  reserve(input: { requestId: string; keyId: string; tier: string; tokens: number }): Promise<ReserveResponse | undefined>;
  settle(input: { requestId: string; keyId: string; tier: string; tokens: number }): Promise<void>;
  limits(input: { requestId: string; keyId: string; tier: string }): Promise<GetLimitsResponse | undefined>;
  close(): void;
}

const deadlineAfter = (ms: number) => (): Date => new Date(Date.now() + ms);

interface UpstreamOptions {
  address: string;
  serviceToken?: string | undefined;
  timeoutMs: number;
  breaker: Breaker;
  logger: Logger;
}

export function createAuthPort(options: UpstreamOptions): AuthPort {
  const channel = createGrpcChannel(options.address);
  const deadline = deadlineAfter(options.timeoutMs);
  const client = createAppClient(AuthServiceDefinition, channel, {
    address: options.address,
    target: 'auth service',
    serviceToken: options.serviceToken,
  });
  return {
    client,
    async authenticate(input, requestId) {
      const response = await options.breaker.run(() =>
        client.authenticate(
          { apiKey: input.apiKey, project: input.project, endpoint: input.endpoint, requiredScope: input.scope },
          callOptions(requestId, undefined, deadline()),
        ),
      ).catch((err: unknown) => {
        // Never let a request through unauthenticated: auth trouble is a 503, not a pass.
        if (isAppError(err) && (err.kind === 'internal' || err.kind === 'timeout')) {
          throw new AppError('unavailable', 'Authentication is temporarily unavailable.', {
            code: 'auth_unavailable',
            retryAfterSeconds: 1,
            cause: err,
          });
        }
        throw err;
      });
      if (!response.principal) throw new AppError('internal', 'auth returned no principal');
      return response.principal;
    },
    close: () => channel.close(),
  };
}

export function createQuotaPort(options: UpstreamOptions & { policy: 'fail-closed' | 'fail-open' }): QuotaPort {
  const channel = createGrpcChannel(options.address);
  const deadline = deadlineAfter(options.timeoutMs);
  const client = createAppClient(QuotaServiceDefinition, channel, {
    address: options.address,
    target: 'quota service',
    serviceToken: options.serviceToken,
  });
  let outage = false;
  const failed = (err: unknown): undefined => {
    if (isAppError(err) && err.kind === 'invalid_request') throw err;
    if (!outage) options.logger.error({ err, policy: options.policy }, 'quota service unreachable');
    outage = true;
    if (options.policy === 'fail-open') return undefined;
    throw new AppError('unavailable', 'Rate limiting is temporarily unavailable; retry shortly.', {
      code: 'quota_unavailable',
      retryAfterSeconds: 1,
      cause: err,
    });
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
            callOptions(input.requestId, undefined, deadline()),
          ),
        );
        recovered();
        return r;
      } catch (err) {
        return failed(err);
      }
    },
    async settle(input) {
      await options.breaker.run(() =>
        client.settle(
          { requestId: input.requestId, keyId: input.keyId, tier: input.tier, tokenCount: input.tokens },
          callOptions(input.requestId, undefined, deadline()),
        ),
      );
    },
    async limits(input) {
      try {
        return await options.breaker.run(() =>
          client.getLimits({ keyId: input.keyId, tier: input.tier }, callOptions(input.requestId, undefined, deadline())),
        );
      } catch (err) {
        // Limits are informational on read-only routes: never fail the request over them.
        options.logger.debug({ err }, 'quota limits unavailable');
        return undefined;
      }
    },
    close: () => channel.close(),
  };
}
