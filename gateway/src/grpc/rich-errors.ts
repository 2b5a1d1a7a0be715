/**
 * The gRPC front door's error boundary: an AppError becomes the gRPC status of the error table
 * (lib/errors/grpc.ts), the same `code` string as over HTTP (trailer `x-error-code`), and gRPC's
 * rich error model in `grpc-status-details-bin`: ErrorInfo (reason = code, domain, metadata with
 * the OpenAI error type and param), RetryInfo for retryable 429/503s, QuotaFailure for rate limits.
 * Internal errors never show their message.
 */
import { Metadata, ServerError, Status } from 'nice-grpc';
import { AppError } from '../../../lib/errors/app-error.js';
import { toServerError } from '../../../lib/errors/grpc.js';
import { toHttpError } from '../../../lib/errors/http.js';
import { encodeRichStatus, STATUS_DETAILS_TRAILER } from '../../../lib/errors/rich-status.js';

export const ERROR_DOMAIN = 'gateway.xerotier';

/** Fills the trailer (code, retry delay, rich status) and returns the status to end the call with. */
export function toRichServerError(app: AppError, trailer: Metadata, keyId: string | undefined): ServerError {
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
