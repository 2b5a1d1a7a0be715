/**
 * createGrpcServer: a nice-grpc server with what every process needs (built by its composition root):
 * request-id binding and per-call child loggers, AppError → gRPC status mapping (once, here),
 * the standard health service, server reflection (grpcurl works) and bounded graceful shutdown.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import {
  createServer,
  Status,
  type CallContext,
  type Server,
  type ServerError,
  type ServerMiddlewareCall,
} from 'nice-grpc';
import { isAbortError } from 'abort-controller-x';
import { HealthDefinition, HealthServiceImpl, HealthState } from 'nice-grpc-server-health';
import { ServerReflection, ServerReflectionService } from 'nice-grpc-server-reflection';
import { toServerError } from '../errors/grpc.js';
import type { Registry } from 'prom-client';
import { statusOfError, type GrpcServerMetrics } from '../metrics/grpc.js';
import { startMetricsServer, type MetricsServer } from '../metrics/server.js';
import { isAppError } from '../errors/app-error.js';
import { serviceTokenCheck } from './service-auth.js';
import { serverCredentials, type GrpcTlsFiles } from './tls.js';
import { HandlerContext } from './handler-context.js';

export const REQUEST_ID_METADATA = 'x-request-id';

/** What every handler gets in its context besides nice-grpc's own. */
export interface RequestContext {
  requestId: string;
  logger: Logger;
}

export interface GrpcServerOptions {
  logger: Logger;
  /** Fully-qualified service names exposed through reflection and health. */
  serviceNames: string[];
  /** Shared service credential; when set, calls without it are refused (UNAUTHENTICATED). */
  serviceToken?: string | undefined;
  /** Counts handled calls by method and status; its registry is served on `metricsPort`. */
  metrics?: (GrpcServerMetrics & { readonly registry: Registry }) | undefined;
  /** Port for Prometheus `GET /metrics` on the same host; undefined = no metrics server. */
  metricsPort?: number | undefined;
  /** Mutual TLS for this server (see tls.ts); undefined = plaintext. */
  tls?: GrpcTlsFiles | undefined;
}

export interface GrpcServer {
  server: Server<RequestContext>;
  health: HealthState;
  listen(host: string, port: number): Promise<number>;
  /** The metrics server's port once listening (undefined when not configured). */
  metricsPort(): number | undefined;
  /** Stops accepting calls, waits up to graceMs for running calls, then cancels them. */
  shutdown(graceMs: number): Promise<void>;
}

const descriptorSetPath = path.join(import.meta.dirname, '..', '..', 'gen', 'descriptor-set.binpb');

export function createGrpcServer(options: GrpcServerOptions): GrpcServer {
  const { logger } = options;
  const server = createServer().use(callMiddleware(logger, options.metrics, options.serviceToken));
  const health = HealthState();
  server.add(HealthDefinition, HealthServiceImpl(health));
  server.add(
    ServerReflectionService,
    ServerReflection(readFileSync(descriptorSetPath), options.serviceNames),
  );
  let metricsServer: MetricsServer | undefined;
  return {
    server,
    health,
    async listen(host, port) {
      const bound = await server.listen(`${host}:${port}`, serverCredentials(options.tls));
      if (options.metrics && options.metricsPort !== undefined) {
        metricsServer = await startMetricsServer(options.metrics.registry, host, options.metricsPort);
      }
      return bound;
    },
    metricsPort: () => metricsServer?.port,
    async shutdown(graceMs) {
      await metricsServer?.close();
      setHealth(health, options.serviceNames, false);
      let timer: NodeJS.Timeout | undefined;
      const forced = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          logger.warn({ graceMs }, 'grace period over, cancelling running calls');
          server.forceShutdown();
          resolve();
        }, graceMs);
      });
      await Promise.race([server.shutdown(), forced]);
      clearTimeout(timer);
    },
  };
}

/**
 * Everything a call goes through, as ONE middleware layer (each layer is an async generator that
 * every streamed message passes through): the call count by final status (it sees the status the
 * client gets, credential refusals included), the service credential, the request id and child
 * logger, one log line per call, and AppError → gRPC status mapping.
 *
 * The call's child logger is made the first time something logs through it (handler-context.ts).
 */
function callMiddleware(root: Logger, metrics: GrpcServerMetrics | undefined, serviceToken: string | undefined) {
  const checkToken = serviceTokenCheck(serviceToken);
  return async function* middleware<Req, Res>(call: ServerMiddlewareCall<Req, Res, RequestContext>, context: CallContext) {
    const path = call.method.path;
    let code: Status | undefined;
    try {
      checkToken(path, context.metadata);
      const requestId = context.metadata.get(REQUEST_ID_METADATA) ?? 'none';
      const handlerContext = HandlerContext.of(context, requestId, root, path);
      const logger = (): Logger => handlerContext.logger;
      const started = performance.now();
      const ms = (): number => Math.round(performance.now() - started);
      try {
        const result = yield* call.next(call.request, handlerContext);
        if (root.isLevelEnabled('debug')) logger().debug({ ms: ms() }, 'rpc ok');
        code = Status.OK;
        return result;
      } catch (err) {
        if (isAbortError(err)) {
          if (root.isLevelEnabled('debug')) logger().debug({ ms: ms() }, 'rpc cancelled by caller');
          throw toServerError(err, context.trailer) satisfies ServerError;
        }
        const mapped = toServerError(err, context.trailer);
        const level = isAppError(err) && err.kind !== 'internal' ? 'debug' : 'error';
        if (root.isLevelEnabled(level)) logger()[level]({ err, code: Status[mapped.code], ms: ms() }, 'rpc failed');
        throw mapped;
      }
    } catch (err) {
      code = statusOfError(err);
      throw err;
    } finally {
      // No code: the response stream was abandoned (the client went away mid-stream).
      metrics?.grpcServerHandledTotal.inc({ method: path, code: Status[code ?? Status.CANCELLED] });
    }
  };
}

/** Sets the overall status and every named service's status at once. */
export function setHealth(health: HealthState, serviceNames: string[], serving: boolean): void {
  const status = serving ? 'healthy' : 'unhealthy';
  health.setStatus(status);
  for (const name of serviceNames) health.setStatus(status, name);
}

