/**
 * nice-grpc server middleware counting completed calls: `grpc_server_handled_total{method,code}`
 * (method = the call path, e.g. `/xerotier.quota.v1.QuotaService/CheckQuota`; code = the status
 * name, e.g. `OK`, `UNAUTHENTICATED`). Attach it FIRST (outermost) so it sees the status the
 * client gets: errors are ServerErrors by then (AppErrors are mapped by an inner middleware).
 */
import { isAbortError } from 'abort-controller-x';
import { ServerError, Status, type CallContext, type ServerMiddlewareCall } from 'nice-grpc';
import { Counter, type Registry } from 'prom-client';

export interface GrpcServerMetrics {
  readonly grpcServerHandledTotal: Counter<'method' | 'code'>;
}

/** The gRPC server series, registered on a process's registry. */
export function createGrpcServerMetrics(registry: Registry): GrpcServerMetrics {
  return {
    grpcServerHandledTotal: new Counter({
      name: 'grpc_server_handled_total',
      help: 'gRPC calls completed on the server, by method path and status code name.',
      labelNames: ['method', 'code'] as const,
      registers: [registry],
    }),
  };
}

/** The status a call ends with when the handler throws `err` (what nice-grpc sends). */
export function statusOfError(err: unknown): Status {
  if (err instanceof ServerError) return err.code;
  if (isAbortError(err)) return Status.CANCELLED;
  return Status.UNKNOWN;
}

/** Counting middleware; with `metrics` undefined it only passes calls through. */
export function grpcMetricsMiddleware(metrics: GrpcServerMetrics | undefined) {
  return async function* grpcMetrics<Req, Res>(call: ServerMiddlewareCall<Req, Res>, context: CallContext) {
    if (!metrics) return yield* call.next(call.request, context);
    let code: Status | undefined;
    try {
      const result = yield* call.next(call.request, context);
      code = Status.OK;
      return result;
    } catch (err) {
      code = statusOfError(err);
      throw err;
    } finally {
      // No code: the response stream was abandoned (the client went away mid-stream).
      metrics.grpcServerHandledTotal.inc({ method: call.method.path, code: Status[code ?? Status.CANCELLED] });
    }
  };
}
