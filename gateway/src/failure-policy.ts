/**
 * Every gateway-side failure policy in one place: which error (and so, through lib/errors, which
 * HTTP status or gRPC status and which `code`) each kind of trouble produces. The transports
 * (HTTP in routes/, gRPC in grpc/) only render what these functions return.
 *
 * | trouble                                   | kind / code                                 |
 * |-------------------------------------------|---------------------------------------------|
 * | auth service unreachable or failing       | unavailable / auth_unavailable (never a pass) |
 * | quota service unreachable                 | GATEWAY_QUOTA_FAILURE_POLICY: fail-closed → unavailable / quota_unavailable; fail-open → admitted without limits |
 * | quota says no (requests or tokens/min)    | rate_limited / rate_limit_exceeded, or tokens_exceed_limit (never retryable) |
 * | no first token within GATEWAY_TTFT_TIMEOUT_MS | timeout / upstream_timeout (the request may move to another worker) |
 * | tier's request time over before the first token | timeout / request_timeout              |
 * | gateway draining (new request, or stream cut at the end of the grace) | unavailable / gateway_draining |
 * | tier's request time over mid-stream       | timeout / request_timeout                   |
 * | tier's idle-stream time over mid-stream   | timeout / stream_idle_timeout               |
 * | worker lost or failing mid-stream         | unavailable / stream_interrupted            |
 */
import type { ReserveResponse } from '../../gen/xerotier/quota/v1/quota_service.js';
import { AppError, isAppError } from '../../lib/errors/app-error.js';

/** Why the gateway ended a request early (see chat/request-signal.ts). */
export type EndReason = 'request_timeout' | 'idle_timeout' | 'client_gone' | 'shutdown';

/** A new request while the gateway stops, or a stream still running when the drain grace ends. */
export function draining(): AppError {
  return new AppError('unavailable', 'The gateway is shutting down; retry the request.', {
    code: 'gateway_draining',
    retryAfterSeconds: 1,
  });
}

/** Auth trouble is a 503, never a pass: no request goes through unauthenticated. */
export function authFailure(err: unknown): unknown {
  if (isAppError(err) && (err.kind === 'internal' || err.kind === 'timeout')) {
    return new AppError('unavailable', 'Authentication is temporarily unavailable.', {
      code: 'auth_unavailable',
      retryAfterSeconds: 1,
      cause: err,
    });
  }
  return err;
}

export type QuotaFailurePolicy = 'fail-closed' | 'fail-open';

/**
 * The quota service could not answer: `undefined` = admit without limits (fail-open), otherwise
 * the error to answer with. A caller error from quota is passed through unchanged.
 */
export function quotaFailure(policy: QuotaFailurePolicy, err: unknown): AppError | undefined {
  if (isAppError(err) && err.kind === 'invalid_request') return err;
  if (policy === 'fail-open') return undefined;
  return new AppError('unavailable', 'Rate limiting is temporarily unavailable; retry shortly.', {
    code: 'quota_unavailable',
    retryAfterSeconds: 1,
    cause: err,
  });
}

/** The 429 for a denied reservation; every 429 says when to come back. */
export function rateLimited(reservation: ReserveResponse): AppError {
  const retryable = reservation.retryable;
  return new AppError(
    'rate_limited',
    retryable
      ? `Rate limit reached for ${reservation.deniedBy || 'requests'} on this API key; retry after the time in Retry-After.`
      : 'This request needs more tokens than the tier allows per minute; reduce max_tokens or the prompt.',
    {
      code: retryable ? 'rate_limit_exceeded' : 'tokens_exceed_limit',
      // A request that can never fit is also marked not retryable; its Retry-After is the whole window.
      retryAfterSeconds: retryable ? Math.max(1, Math.ceil(reservation.retryAfterMs / 1000)) : 60,
      retryable,
    },
  );
}

/** A worker attempt that produced no first token within GATEWAY_TTFT_TIMEOUT_MS. */
export function ttftTimeout(): AppError {
  return new AppError('timeout', 'The worker did not produce a first token in time.', { code: 'upstream_timeout' });
}

/**
 * Before the first token a request may move to another worker after a worker-side failure
 * (unavailable, internal, TTFT timeout); caller errors stay where they are.
 */
export function movableBeforeFirstToken(err: unknown): boolean {
  if (!isAppError(err)) return true;
  return err.kind === 'unavailable' || err.kind === 'internal' || err.kind === 'timeout';
}

/** Opening the generation failed (no first token): what the caller is told. */
export function openFailure(reason: EndReason | undefined, err: unknown): unknown {
  if (reason === 'request_timeout' || reason === 'idle_timeout') {
    return new AppError('timeout', 'The request timed out before the model produced a first token.', {
      code: 'request_timeout',
    });
  }
  if (reason === 'shutdown') return draining();
  return err;
}

/** The stream failed after its first token: the one terminal error event the caller gets. */
export function streamFailure(reason: EndReason | undefined, err: unknown): AppError {
  if (reason === 'idle_timeout') return new AppError('timeout', 'The stream was idle for too long.', { code: 'stream_idle_timeout' });
  if (reason === 'request_timeout') return new AppError('timeout', 'The request exceeded its time limit.', { code: 'request_timeout' });
  if (reason === 'shutdown') return draining();
  if (isAppError(err) && err.kind !== 'cancelled') return err;
  return new AppError('unavailable', 'The inference worker failed during the stream; retry the request.', {
    code: 'stream_interrupted',
    retryAfterSeconds: 1,
  });
}

/** Whether a mid-stream failure counts against the worker's breaker (a drain is not its fault). */
export function countsAgainstWorker(reason: EndReason | undefined): boolean {
  return reason !== 'shutdown';
}
