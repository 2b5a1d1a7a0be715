/**
 * The HTTP boundary of the error hierarchy: AppError → status, headers, OpenAI envelope
 * `{"error":{"message","type","param","code"}}`, the shape the official OpenAI SDKs parse.
 */
import { AppError, type ErrorKind } from './app-error.js';

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export interface HttpError {
  status: number;
  headers: Record<string, string>;
  body: OpenAIErrorBody;
}

const kindToHttp: Record<ErrorKind, { status: number; type: string }> = {
  invalid_request: { status: 400, type: 'invalid_request_error' },
  too_large: { status: 413, type: 'invalid_request_error' },
  unauthenticated: { status: 401, type: 'authentication_error' },
  permission_denied: { status: 403, type: 'permission_error' },
  not_found: { status: 404, type: 'not_found_error' },
  rate_limited: { status: 429, type: 'rate_limit_error' },
  unavailable: { status: 503, type: 'service_unavailable' },
  timeout: { status: 504, type: 'timeout_error' },
  // 499 is nginx's "client closed request"; nobody reads it, but logs and metrics do.
  cancelled: { status: 499, type: 'cancelled' },
  internal: { status: 500, type: 'server_error' },
};

export function toHttpError(err: unknown): HttpError {
  const app = err instanceof AppError ? err : new AppError('internal', 'internal error', { cause: err });
  const { status, type } = kindToHttp[app.kind];
  const headers: Record<string, string> = {};
  if (app.retryAfterSeconds !== undefined) {
    headers['retry-after'] = String(Math.min(60, Math.max(1, Math.ceil(app.retryAfterSeconds))));
  }
  if (app.retryable === false) headers['x-should-retry'] = 'false';
  // Internal errors never show their message: it may carry paths or upstream details.
  const message = app.kind === 'internal' ? 'The server had an error while processing your request.' : app.message;
  return {
    status,
    headers,
    body: { error: { message, type, param: app.param ?? null, code: app.code } },
  };
}
