/**
 * The gRPC boundary of the error hierarchy: AppError ⇄ gRPC status + `x-error-code` trailer.
 * Servers map with `appErrorMiddleware` (lib/grpc/server.ts); clients with `clientErrorMiddleware`
 * (lib/grpc/client.ts), so every process sees the same AppError on both sides of a hop.
 */
import { ClientError, Metadata, ServerError, Status } from 'nice-grpc';
import { AppError, type ErrorKind } from './app-error.js';

export const ERROR_CODE_TRAILER = 'x-error-code';
export const RETRY_AFTER_TRAILER = 'x-retry-after';
export const ERROR_PARAM_TRAILER = 'x-error-param';

const kindToStatus: Record<ErrorKind, Status> = {
  invalid_request: Status.INVALID_ARGUMENT,
  too_large: Status.INVALID_ARGUMENT,
  unauthenticated: Status.UNAUTHENTICATED,
  permission_denied: Status.PERMISSION_DENIED,
  not_found: Status.NOT_FOUND,
  rate_limited: Status.RESOURCE_EXHAUSTED,
  unavailable: Status.UNAVAILABLE,
  timeout: Status.DEADLINE_EXCEEDED,
  cancelled: Status.CANCELLED,
  internal: Status.INTERNAL,
};

/** Maps an AppError (or anything) to a ServerError and fills the trailer with its code. */
export function toServerError(err: unknown, trailer: Metadata): ServerError {
  if (err instanceof ServerError) return err;
  const app = err instanceof AppError ? err : new AppError('internal', 'internal error', { cause: err });
  trailer.set(ERROR_CODE_TRAILER, app.code);
  if (app.param !== undefined) trailer.set(ERROR_PARAM_TRAILER, app.param);
  // A worker at capacity is RESOURCE_EXHAUSTED on the wire (grpc convention), UNAVAILABLE otherwise.
  if (app.code === 'capacity_exceeded') {
    if (app.retryAfterSeconds !== undefined) trailer.set(RETRY_AFTER_TRAILER, String(app.retryAfterSeconds));
    return new ServerError(Status.RESOURCE_EXHAUSTED, app.message);
  }
  if (app.retryAfterSeconds !== undefined) trailer.set(RETRY_AFTER_TRAILER, String(app.retryAfterSeconds));
  return new ServerError(kindToStatus[app.kind], app.message);
}

/** Maps a client-side failure back to an AppError. `trailer` is what the server sent, if any. */
export function fromClientError(err: unknown, trailer: Metadata | undefined, target: string): AppError {
  if (err instanceof AppError) return err;
  if (!(err instanceof ClientError)) {
    if (err instanceof Error && err.name === 'AbortError') {
      return new AppError('cancelled', 'request cancelled', { cause: err });
    }
    return new AppError('internal', 'internal error', { cause: err });
  }
  const code = trailer?.get(ERROR_CODE_TRAILER);
  const retryAfter = trailer?.get(RETRY_AFTER_TRAILER);
  const options = {
    code: code,
    param: trailer?.get(ERROR_PARAM_TRAILER),
    retryAfterSeconds: retryAfter === undefined ? undefined : Number(retryAfter),
    cause: err,
  };
  switch (err.code) {
    case Status.INVALID_ARGUMENT:
    case Status.OUT_OF_RANGE:
    case Status.FAILED_PRECONDITION:
      return new AppError('invalid_request', err.details, options);
    case Status.UNAUTHENTICATED:
      return new AppError('unauthenticated', err.details, options);
    case Status.PERMISSION_DENIED:
      return new AppError('permission_denied', err.details, options);
    case Status.NOT_FOUND:
      return new AppError('not_found', err.details, options);
    case Status.RESOURCE_EXHAUSTED:
      // A worker at capacity: the platform is overloaded, the client is not over a rate limit.
      return new AppError('unavailable', err.details, {
        ...options,
        code: code ?? 'capacity_exceeded',
        retryAfterSeconds: options.retryAfterSeconds ?? 1,
      });
    case Status.DEADLINE_EXCEEDED:
      return new AppError('timeout', `${target} did not answer in time`, options);
    case Status.CANCELLED:
      return new AppError('cancelled', 'request cancelled', options);
    case Status.UNAVAILABLE:
      return new AppError('unavailable', `${target} is unavailable`, {
        ...options,
        code: code ?? 'upstream_unavailable',
        retryAfterSeconds: options.retryAfterSeconds ?? 1,
      });
    default:
      // Never pass an upstream's internal message to clients.
      return new AppError('internal', 'internal error', options);
  }
}
