/**
 * One error hierarchy for every process. Services throw these;
 * each boundary maps them once: lib/errors/grpc.ts (gRPC status + `x-error-code` trailer)
 * and lib/errors/http.ts (HTTP status + OpenAI envelope).
 */

export type ErrorKind =
  | 'invalid_request'
  | 'too_large'
  | 'unauthenticated'
  | 'permission_denied'
  | 'not_found'
  | 'rate_limited'
  | 'unavailable'
  | 'timeout'
  | 'cancelled'
  | 'internal';

export interface AppErrorOptions {
  /** Machine code for clients (OpenAI `error.code`), e.g. `invalid_api_key`. */
  code?: string | undefined;
  /** Request parameter at fault (OpenAI `error.param`). */
  param?: string | undefined;
  /** Seconds the client should wait before retrying (503/429). */
  retryAfterSeconds?: number | undefined;
  /** false = the client must not retry (`x-should-retry: false`). */
  retryable?: boolean | undefined;
  cause?: unknown;
}

export class AppError extends Error {
  readonly kind: ErrorKind;
  readonly code: string;
  readonly param: string | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly retryable: boolean | undefined;

  constructor(kind: ErrorKind, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.kind = kind;
    this.code = options.code ?? defaultCode[kind];
    this.param = options.param;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.retryable = options.retryable;
  }
}

const defaultCode: Record<ErrorKind, string> = {
  invalid_request: 'invalid_request',
  too_large: 'request_too_large',
  unauthenticated: 'invalid_api_key',
  permission_denied: 'permission_denied',
  not_found: 'not_found',
  rate_limited: 'rate_limit_exceeded',
  unavailable: 'service_unavailable',
  timeout: 'request_timeout',
  cancelled: 'cancelled',
  internal: 'internal_error',
};

export const invalidRequest = (message: string, options?: AppErrorOptions): AppError =>
  new AppError('invalid_request', message, options);
export const unauthenticated = (message: string, options?: AppErrorOptions): AppError =>
  new AppError('unauthenticated', message, options);
export const permissionDenied = (message: string, options?: AppErrorOptions): AppError =>
  new AppError('permission_denied', message, options);
export const notFound = (message: string, options?: AppErrorOptions): AppError =>
  new AppError('not_found', message, options);
export const unavailable = (message: string, options?: AppErrorOptions): AppError =>
  new AppError('unavailable', message, options);

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}
