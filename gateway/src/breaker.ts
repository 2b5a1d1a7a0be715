/**
 * One opossum breaker per upstream target, created in the composition root.
 * The breaker's action is "run this operation", so a caller can guard a phase of its own choosing
 * (a unary call, or "open the stream and get the first token") and can record a failure that
 * happens later (a stream that breaks after its first token).
 * Caller errors and capacity rejections never count as failures.
 */
import CircuitBreaker from 'opossum';
import type { Logger } from 'pino';
import { AppError, isAppError } from '../../lib/errors/app-error.js';

export interface BreakerOptions {
  errorThresholdPercentage: number;
  volumeThreshold: number;
  resetTimeoutMs: number;
  rollingWindowMs: number;
  /** Per-operation timeout; undefined = none (the operation bounds itself). */
  timeoutMs?: number | undefined;
}

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface Breaker {
  readonly name: string;
  run<T>(op: () => Promise<T>): Promise<T>;
  /** Records a failure observed outside run() (e.g. a stream that broke mid-way). */
  recordFailure(err: unknown): void;
  state(): BreakerState;
  /** Seconds until the breaker will admit a probe (0 when closed). */
  retryAfterSeconds(): number;
  /**
   * Closes an open or half-open breaker on evidence from outside its calls that the upstream is
   * back (its channel connected again), instead of waiting out the reset time. No-op when closed.
   */
  reset(): void;
  shutdown(): void;
}

/** Errors that say nothing about the upstream's health. */
export function isCallerError(err: unknown): boolean {
  if (!isAppError(err)) return false;
  if (err.code === 'capacity_exceeded') return true;
  return ['invalid_request', 'unauthenticated', 'permission_denied', 'not_found', 'cancelled', 'rate_limited'].includes(err.kind);
}

export function createBreaker(
  name: string,
  options: BreakerOptions,
  logger: Logger,
  onStateChange?: (name: string, state: BreakerState) => void,
): Breaker {
  const cb = new CircuitBreaker(<T>(op: () => Promise<T>) => op(), {
    name,
    timeout: options.timeoutMs ?? false,
    errorThresholdPercentage: options.errorThresholdPercentage,
    volumeThreshold: options.volumeThreshold,
    resetTimeout: options.resetTimeoutMs,
    rollingCountTimeout: options.rollingWindowMs,
    rollingCountBuckets: 10,
    // Returning true means "not a failure".
    errorFilter: (err: unknown) => isCallerError(err),
  });
  let openedAt = 0;
  const change = (state: BreakerState) => () => {
    if (state === 'open') openedAt = Date.now();
    logger.warn({ breaker: name, state }, 'breaker state changed');
    onStateChange?.(name, state);
  };
  cb.on('open', change('open'));
  cb.on('halfOpen', change('half-open'));
  cb.on('close', change('closed'));

  const state = (): BreakerState => (cb.opened ? 'open' : cb.halfOpen ? 'half-open' : 'closed');
  const retryAfterSeconds = (): number => {
    if (state() === 'closed') return 0;
    const left = openedAt + options.resetTimeoutMs - Date.now();
    return Math.min(60, Math.max(1, Math.ceil(left / 1000)));
  };
  return {
    name,
    async run<T>(op: () => Promise<T>): Promise<T> {
      try {
        return (await cb.fire(op)) as T;
      } catch (err) {
        if (err instanceof Error && CircuitBreaker.isOurError(err)) {
          const code = (err as Error & { code?: string }).code;
          if (code === 'ETIMEDOUT') throw new AppError('timeout', `${name} did not answer in time`, { code: 'upstream_timeout' });
          throw new AppError('unavailable', `${name} is temporarily unavailable.`, {
            code: 'circuit_open',
            retryAfterSeconds: retryAfterSeconds(),
          });
        }
        throw err;
      }
    },
    recordFailure(err) {
      if (isCallerError(err)) return;
      cb.fire(() => Promise.reject(err)).catch(() => undefined);
    },
    state,
    retryAfterSeconds,
    reset: () => cb.close(),
    shutdown: () => cb.shutdown(),
  };
}
