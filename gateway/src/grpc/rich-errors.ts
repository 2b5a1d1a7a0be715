/**
 * The gRPC front door's error boundary: an AppError becomes the gRPC status of the error table
 * (lib/errors/grpc.ts), the same `code` string as over HTTP (trailer `x-error-code`), and gRPC's
 * rich error model in `grpc-status-details-bin`: ErrorInfo (reason = code, domain, metadata with
 * the OpenAI error type and param), RetryInfo for retryable 429/503s, QuotaFailure for rate limits.
 * Internal errors never show their message.
 */
import { isAbortError } from 'abort-controller-x';
import type { Logger } from 'pino';
import { Metadata, ServerError, Status, type CallContext, type ServerMiddlewareCall } from 'nice-grpc';
import { AppError } from '../../../lib/errors/app-error.js';
import { toServerError } from '../../../lib/errors/grpc.js';
import { toHttpError } from '../../../lib/errors/http.js';
import { encodeRichStatus, STATUS_DETAILS_TRAILER } from '../../../lib/errors/rich-status.js';

export const ERROR_DOMAIN = 'gateway.xerotier';

/** Filled by the handler as it learns who is calling; used to describe quota failures. */
export interface ErrorScope {
  errorScope: { keyId?: string };
}

export function richErrorMiddleware(logger: Logger) {
  return async function* middleware<Req, Res>(call: ServerMiddlewareCall<Req, Res, ErrorScope>, context: CallContext) {
    const errorScope: ErrorScope['errorScope'] = {};
    try {
      return yield* call.next(call.request, { ...context, errorScope });
    } catch (err) {
      if (isAbortError(err) || err instanceof ServerError) throw err;
      const app = err instanceof AppError ? err : new AppError('internal', 'internal error', { cause: err });
      if (app.kind === 'internal') logger.error({ err, rpc: call.method.path }, 'rpc failed');
      throw toRichServerError(app, context.trailer, errorScope.keyId);
    }
  };
}

function toRichServerError(app: AppError, trailer: Metadata, keyId: string | undefined): ServerError {
  const { code } = toServerError(app, trailer);
  const http = toHttpError(app);
  const message = http.body.error.message;
  const metadata: Record<string, string> = { type: http.body.error.type, http_status: String(http.status) };
  if (app.param !== undefined) metadata['param'] = app.param;
  const retryable = app.retryAfterSeconds !== undefined && app.retryable !== false;
  if (app.retryable === false) metadata['retryable'] = 'false';
  trailer.set(
    STATUS_DETAILS_TRAILER,
    encodeRichStatus({
      code,
      message,
      errorInfo: { reason: app.code, domain: ERROR_DOMAIN, metadata },
      // The same delay as HTTP's Retry-After (whole seconds, 1–60).
      retryDelayMs: retryable && (code === Status.RESOURCE_EXHAUSTED || code === Status.UNAVAILABLE) ? Number(http.headers['retry-after']) * 1000 : undefined,
      quotaFailure: app.kind === 'rate_limited' ? [{ subject: keyId ? `api_key:${keyId}` : 'api_key', description: message }] : undefined,
    }),
  );
  return new ServerError(code, message);
}
