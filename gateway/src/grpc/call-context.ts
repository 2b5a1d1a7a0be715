/**
 * What every call of the gRPC front door gets before its handler runs, and the one log line it
 * leaves: a server-chosen request id (response metadata `x-request-id`; a caller's own
 * `x-request-id` is kept in the log for correlation only, so it can never key a quota
 * reservation), a child logger bound to it, and the error boundary (rich-errors.ts).
 */
import { isAbortError } from 'abort-controller-x';
import type { Logger } from 'pino';
import { ServerError, Status, type CallContext, type ServerMiddlewareCall } from 'nice-grpc';
import { AppError } from '../../../lib/errors/app-error.js';
import { createRequestIds, type RequestIds } from '../request-id.js';
import { toRichServerError } from './rich-errors.js';

export interface GatewayCallContext {
  gateway: {
    requestId: string;
    logger: Logger;
    /** Set by the handler once the key is known; names the subject of quota failures. */
    keyId?: string;
  };
}

export function callContextMiddleware(root: Logger, nextId: RequestIds = createRequestIds()) {
  return async function* middleware<Req, Res>(call: ServerMiddlewareCall<Req, Res, GatewayCallContext>, context: CallContext) {
    const requestId = nextId();
    context.header.set('x-request-id', requestId);
    const given = context.metadata.get('x-request-id');
    const logger = root.child({ reqId: requestId, rpc: call.method.path, ...(given ? { clientRequestId: given.slice(0, 128) } : {}) });
    const gateway: GatewayCallContext['gateway'] = { requestId, logger };
    const started = performance.now();
    const done = (status: Status, err?: unknown): void => {
      const level = status === Status.INTERNAL || status === Status.UNKNOWN ? 'error' : 'info';
      logger[level]({ status: Status[status], ms: Math.round(performance.now() - started), ...(err ? { err } : {}) }, 'rpc finished');
    };
    try {
      const result = yield* call.next(call.request, { ...context, gateway });
      done(Status.OK);
      return result;
    } catch (err) {
      if (isAbortError(err)) {
        done(Status.CANCELLED);
        throw err;
      }
      if (err instanceof ServerError) {
        done(err.code);
        throw err;
      }
      const app = err instanceof AppError ? err : new AppError('internal', 'internal error', { cause: err });
      const mapped = toRichServerError(app, context.trailer, gateway.keyId);
      done(mapped.code, app.kind === 'internal' ? err : undefined);
      throw mapped;
    }
  };
}
