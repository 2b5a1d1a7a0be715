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
 * Everything a call goes through, as ONE middleware layer: the call count by final status (it
 * sees the status the client gets, credential refusals included), the service credential, the
 * request id and child logger, one log line per call, and AppError → gRPC status mapping.
 *
 * The layer is a plain async iterator around the handler's (see {@link TrackedCall}), not an async
 * generator delegating with `yield*`: every streamed message passes through it, and a generator
 * layer costs several promise hops per message where this costs one. The call's child logger is
 * made the first time something logs through it (most calls never do).
 */
function callMiddleware(root: Logger, metrics: GrpcServerMetrics | undefined, serviceToken: string | undefined) {
  const checkToken = serviceTokenCheck(serviceToken);
  // Counter children by "path code": prom-client hashes the label object on every inc() otherwise.
  const handled = new Map<string, { inc(): void }>();
  const count = metrics
    ? (path: string, code: Status): void => {
        const key = `${path} ${code}`;
        let child = handled.get(key);
        if (!child) {
          child = metrics.grpcServerHandledTotal.labels({ method: path, code: Status[code] });
          handled.set(key, child);
        }
        child.inc();
      }
    : undefined;
  return function middleware<Req, Res>(call: ServerMiddlewareCall<Req, Res, RequestContext>, context: CallContext) {
    return new TrackedCall<Res>(root, count, () => {
      checkToken(call.method.path, context.metadata);
      const requestId = context.metadata.get(REQUEST_ID_METADATA) ?? 'none';
      return { requestId, next: (ctx) => call.next(call.request, { ...context, ...ctx }) as AsyncGenerator<Res, Res | void, undefined> };
    }, call.method.path, context.trailer) as unknown as AsyncGenerator<Res, Res | void, undefined>;
  };
}

type Step<Res> = IteratorResult<Res, Res | void>;

/**
 * One call as seen by the middleware: the handler's iterator, with the credential checked before
 * the first step, the outcome counted once (OK, the mapped error's status, or CANCELLED when the
 * response stream was abandoned) and errors mapped to ServerErrors and logged once.
 */
class TrackedCall<Res> {
  private inner: AsyncGenerator<Res, Res | void, undefined> | undefined;
  private refused: unknown;
  private child: Logger | undefined;
  private readonly requestId: string = 'none';
  private readonly started = performance.now();
  private ended = false;

  constructor(
    private readonly root: Logger,
    private readonly count: ((path: string, code: Status) => void) | undefined,
    open: () => { requestId: string; next: (ctx: RequestContext) => AsyncGenerator<Res, Res | void, undefined> },
    private readonly path: string,
    private readonly trailer: CallContext['trailer'],
  ) {
    try {
      const opened = open();
      this.requestId = opened.requestId;
      const self = this;
      this.inner = opened.next({
        requestId: opened.requestId,
        get logger(): Logger {
          return self.logger();
        },
        set logger(l: Logger) {
          self.child = l;
        },
      });
    } catch (err) {
      this.refused = err;
    }
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<Step<Res>> {
    return this.step((inner) => inner.next());
  }

  /** nice-grpc abandons the response stream (the client went away mid-stream): CANCELLED, no log line. */
  return(value: Res | void): Promise<Step<Res>> {
    return this.step((inner) => inner.return(value), true);
  }

  throw(err: unknown): Promise<Step<Res>> {
    return this.step((inner) => inner.throw(err));
  }

  private step(run: (inner: AsyncGenerator<Res, Res | void, undefined>) => Promise<Step<Res>>, abandoned = false): Promise<Step<Res>> {
    const { inner } = this;
    if (inner === undefined) {
      // The credential check failed: the call ends with its ServerError, counted but not logged.
      if (this.ended) return Promise.resolve({ done: true, value: undefined });
      this.end(statusOfError(this.refused));
      return Promise.reject(this.refused);
    }
    let pending: Promise<Step<Res>>;
    try {
      pending = run(inner);
    } catch (err) {
      pending = Promise.reject(err);
    }
    return pending.then(
      (result) => {
        if (abandoned) {
          if (!this.ended) this.end(Status.CANCELLED);
        } else if (result.done === true) this.finished();
        return result;
      },
      (err: unknown) => {
        throw this.failed(err);
      },
    );
  }

  /** The handler returned. */
  private finished(): void {
    if (this.ended) return;
    if (this.root.isLevelEnabled('debug')) this.logger().debug({ ms: this.ms() }, 'rpc ok');
    this.end(Status.OK);
  }

  private failed(err: unknown): ServerError {
    const mapped = toServerError(err, this.trailer);
    if (!this.ended) {
      if (isAbortError(err)) {
        if (this.root.isLevelEnabled('debug')) this.logger().debug({ ms: this.ms() }, 'rpc cancelled by caller');
      } else {
        const level = isAppError(err) && err.kind !== 'internal' ? 'debug' : 'error';
        if (this.root.isLevelEnabled(level)) this.logger()[level]({ err, code: Status[mapped.code], ms: this.ms() }, 'rpc failed');
      }
      this.end(statusOfError(mapped));
    }
    return mapped;
  }

  private end(code: Status): void {
    this.ended = true;
    this.count?.(this.path, code);
  }

  private ms(): number {
    return Math.round(performance.now() - this.started);
  }

  private logger(): Logger {
    return (this.child ??= this.root.child({ reqId: this.requestId, rpc: this.path }));
  }
}

/** Sets the overall status and every named service's status at once. */
export function setHealth(health: HealthState, serviceNames: string[], serving: boolean): void {
  const status = serving ? 'healthy' : 'unhealthy';
  health.setStatus(status);
  for (const name of serviceNames) health.setStatus(status, name);
}

