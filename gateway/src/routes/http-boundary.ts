/**
 * The gateway's HTTP boundary checks and error response, shared by the express app and by the
 * direct dispatch of the inference routes (direct-dispatch.ts), so both answer alike: the
 * DNS-based URL rewrite, the refusal of repeated Authorization/Host headers, framework errors
 * mapped into AppError, and the one error response in the OpenAI envelope.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError, invalidRequest } from '../../../lib/errors/app-error.js';
import { toHttpError } from '../../../lib/errors/http.js';
import { sendJson } from '../openai/send-json.js';
import type { RequestLocals } from '../request-context.js';

/**
 * DNS-based URLs: `{endpoint}.{project}.<base domain>/v1/...` become `/{project}/{endpoint}/v1/...`;
 * undefined when the request is not of that form. `suffix` is `.` + the base domain.
 */
export function hostRoutedUrl(host: string | undefined, url: string, suffix: string): string | undefined {
  if (!url.startsWith('/v1/')) return undefined;
  const name = (host ?? '').toLowerCase().replace(/:\d+$/, '');
  if (!name.endsWith(suffix)) return undefined;
  const labels = name.slice(0, -suffix.length).split('.');
  return labels.length === 2 && labels[0] && labels[1] ? `/${labels[1]}/${labels[0]}${url}` : undefined;
}

/**
 * Node keeps the first of repeated Authorization/Host headers and drops the rest; a proxy in
 * front may keep the last. The ambiguity is refused instead of guessing which one was meant.
 */
export function repeatedHeader(raw: string[]): AppError | undefined {
  let authorization = false;
  let host = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] ?? '';
    if (name.length !== 13 && name.length !== 4) continue;
    const lower = name.toLowerCase();
    if (lower === 'authorization') {
      if (authorization) return duplicate(lower);
      authorization = true;
    } else if (lower === 'host') {
      if (host) return duplicate(lower);
      host = true;
    }
  }
  return undefined;
}

function duplicate(name: string): AppError {
  return invalidRequest(`The ${name} header must appear once.`, { code: 'duplicate_header', param: name });
}

/**
 * Errors raised by express and body-parser (bad percent-encoding in the path, corrupt or
 * truncated compressed bodies, bad JSON, oversized bodies) are the client's mistakes: map them
 * into our hierarchy by their status so none of them becomes a 500.
 */
export function fromFramework(err: unknown): unknown {
  if (err instanceof AppError) return err;
  const e = err as { type?: unknown; status?: unknown; statusCode?: unknown } | null;
  const type = e?.type;
  if (type === 'entity.parse.failed') {
    return invalidRequest('The request body is not valid JSON.', { code: 'json_parse_error' });
  }
  if (type === 'entity.too.large') {
    return new AppError('too_large', 'The request body is too large.');
  }
  if ((typeof type === 'string' && type.startsWith('encoding')) || type === 'charset.unsupported') {
    return invalidRequest('Unsupported request body encoding.', { code: 'invalid_request' });
  }
  if (err instanceof URIError) {
    return invalidRequest('The request path is not valid percent-encoding.', { code: 'invalid_request' });
  }
  const status = typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : 0;
  if (status === 413) return new AppError('too_large', 'The request body is too large.');
  if (status >= 400 && status < 500) {
    return invalidRequest('The request could not be read (malformed path, encoding or body).', { code: 'invalid_request' });
  }
  return err;
}

/**
 * The error response of a request (the one place errors become HTTP): status, `Retry-After` and
 * the rate-limit headers known so far, the OpenAI envelope; only the end of the response when
 * its headers already went out (a stream that failed midway).
 */
export function sendError(err: unknown, _req: IncomingMessage, res: ServerResponse & { locals: object }): void {
  const locals = res.locals as RequestLocals;
  const mapped = toHttpError(fromFramework(err));
  if (mapped.body.error.code) locals.errorCode = mapped.body.error.code;
  if (mapped.status >= 500 && mapped.status !== 503) locals.logger.error({ err }, 'request failed');
  if (res.headersSent) {
    res.end();
    return;
  }
  const headers = locals.headers;
  if (headers) for (const name in headers) res.setHeader(name, headers[name] as string);
  for (const name in mapped.headers) res.setHeader(name, mapped.headers[name] as string);
  sendJson(res, mapped.status, mapped.body);
}
