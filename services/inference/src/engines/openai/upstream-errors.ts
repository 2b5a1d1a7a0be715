/**
 * The upstream error taxonomy: what an OpenAI-compatible server's HTTP status and error body
 * become as an AppError. Client-visible messages never carry the upstream URL, paths or raw
 * upstream text, except a sanitized 4xx message (e.g. vLLM's context-length message); details
 * go to the log.
 *
 * | upstream                         | AppError                                         |
 * |----------------------------------|--------------------------------------------------|
 * | 429, 503                         | unavailable `capacity_exceeded` (+ Retry-After)  |
 * | 401, 403, 404, 405               | internal (our deployment is misconfigured)       |
 * | 408, 502, 504                    | unavailable                                      |
 * | other 4xx                        | invalid_request (`context_length_exceeded` when the message says so) |
 * | 5xx, a mid-stream error          | internal                                         |
 */
import type { Logger } from 'pino';
import { AppError } from '../../../../../lib/errors/app-error.js';
import { isRecord } from './json.js';

export const GENERIC_UNAVAILABLE = 'The inference engine is unavailable; retry later.';
export const GENERIC_INTERNAL = 'The inference engine failed while generating the response.';
const GENERIC_INVALID = 'The inference engine rejected the request.';

/**
 * Returns the upstream's 4xx message when it is safe to show a client (short, printable, no URLs,
 * file paths, stack traces, hosts or key-like strings); undefined otherwise.
 */
export function safeUpstreamMessage(message: unknown): string | undefined {
  if (typeof message !== 'string') return undefined;
  const text = message.trim();
  if (text.length === 0 || text.length > 500) return undefined;
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(text)) return undefined;
  const unsafe = [
    /[a-z][a-z0-9+.-]*:\/\//i, // any URL
    /(^|[\s"'(=])\/[\w.-]+\/[\w./-]*/, // unix path with at least two segments
    /[a-z]:\\/i, // windows path
    /\b[\w-]+\.(py|js|ts|cpp|cc|c|h|rs|go|so)\b/i, // source files
    /traceback|stack trace|\bat [\w$.<>]+ \(/i,
    /\b(localhost|127\.0\.0\.1|0\.0\.0\.0)\b|\b\d{1,3}(\.\d{1,3}){3}\b|\[[0-9a-f:]+\]/i,
    /bearer\s|api[_-]?key|secret|token=|sk-[a-z0-9]/i,
    /\b[A-Za-z0-9_-]{40,}\b/, // long opaque strings (keys, hashes)
  ];
  return unsafe.some((re) => re.test(text)) ? undefined : text;
}

/** Retry-After as seconds (delta-seconds or HTTP date); undefined when absent or unparsable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.ceil(Number(trimmed));
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

export interface UpstreamErrorInfo {
  message?: unknown;
  type?: unknown;
  param?: unknown;
  code?: unknown;
}

/** Reads `{"error":{...}}` (OpenAI, new vLLM), `{"object":"error",...}` (old vLLM) or `{"error":"..."}` (TGI). */
export function upstreamErrorInfo(body: unknown): UpstreamErrorInfo | undefined {
  if (!isRecord(body)) return undefined;
  const err = body['error'];
  if (isRecord(err)) return err;
  if (typeof err === 'string') return { message: err, type: body['error_type'] };
  if (body['object'] === 'error') return body;
  if (typeof body['detail'] === 'string') return { message: body['detail'] }; // FastAPI
  return undefined;
}

/** An HTTP error answer of the upstream (status, Retry-After header, parsed body) as an AppError. */
export function httpError(status: number, retryAfter: string | null, body: unknown, logger: Logger, requestId: string): AppError {
  const info = upstreamErrorInfo(body);
  logger.warn({ requestId, upstreamStatus: status, upstreamError: info ?? body }, 'upstream rejected the request');
  if (status === 429 || status === 503) {
    return new AppError('unavailable', 'The inference engine is at capacity; retry later.', {
      code: 'capacity_exceeded',
      retryAfterSeconds: parseRetryAfter(retryAfter),
    });
  }
  if (status === 401 || status === 403 || status === 404 || status === 405) {
    // Wrong upstream key, model or URL: a deployment fault, not the caller's.
    logger.error({ requestId, upstreamStatus: status }, 'upstream refused us: check OPENAI_UPSTREAM_URL / _MODEL / _API_KEY');
    return new AppError('internal', GENERIC_INTERNAL);
  }
  if (status === 408) return new AppError('unavailable', GENERIC_UNAVAILABLE);
  if (status >= 400 && status < 500) {
    const message = safeUpstreamMessage(info?.message);
    const contextOverflow = typeof info?.message === 'string' && /context length|context window|maximum context|too many tokens|exceeds the (model|context)/i.test(info.message);
    const param = typeof info?.param === 'string' && /^[a-z_][a-z0-9_.[\]]{0,63}$/i.test(info.param) ? info.param : undefined;
    return new AppError('invalid_request', message ?? GENERIC_INVALID, {
      code: contextOverflow ? 'context_length_exceeded' : 'invalid_request',
      param: contextOverflow ? (param ?? 'messages') : param,
    });
  }
  if (status === 502 || status === 504) return new AppError('unavailable', GENERIC_UNAVAILABLE);
  return new AppError('internal', GENERIC_INTERNAL);
}

/** An error the upstream reported inside a 200 answer (SSE `event: error`, an error chunk or body). */
export function streamError(detail: unknown, logger: Logger, requestId: string): AppError {
  logger.error({ requestId, upstreamError: isRecord(detail) ? (upstreamErrorInfo(detail) ?? detail) : detail }, 'upstream failed mid-stream');
  return new AppError('internal', GENERIC_INTERNAL);
}

/**
 * Short cause of a failed upstream request, for logs: a socket error's code (ECONNREFUSED, …;
 * a wrapped error's when it carries the socket error in `cause`), else its message.
 */
export function describeNetworkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const own = (err as Error & { code?: unknown }).code;
  if (typeof own === 'string') return own;
  const cause = err.cause;
  if (cause instanceof Error) {
    const code = (cause as Error & { code?: unknown }).code;
    return typeof code === 'string' ? code : cause.message;
  }
  return err.name === 'Error' ? err.message : `${err.name}: ${err.message}`;
}
