/**
 * Admission for one worker: at most `capacity` generations run, at most `queueCapacity` wait
 * (FIFO, abortable). Beyond that the caller gets `capacity_exceeded` at once — never an
 * unbounded queue, so overload is a prompt 503 `capacity_exceeded` rather than growing latency.
 */
import { AppError } from '../../../lib/errors/app-error.js';

export interface Admission {
  acquire(signal: AbortSignal): Promise<() => void>;
  inFlight(): number;
  queued(): number;
  readonly capacity: number;
  readonly queueCapacity: number;
}

export function createAdmission(capacity: number, queueCapacity: number): Admission {
  let running = 0;
  const waiters: Array<{ grant: () => void }> = [];

  const release = (): void => {
    const next = waiters.shift();
    if (next) next.grant();
    else running -= 1;
  };
  const releaseOnce = (): (() => void) => {
    let done = false;
    return () => {
      if (!done) {
        done = true;
        release();
      }
    };
  };

  return {
    capacity,
    queueCapacity,
    inFlight: () => running,
    queued: () => waiters.length,
    acquire(signal) {
      if (signal.aborted) return Promise.reject(new AppError('cancelled', 'request cancelled'));
      if (running < capacity) {
        running += 1;
        return Promise.resolve(releaseOnce());
      }
      if (waiters.length >= queueCapacity) {
        return Promise.reject(
          new AppError('unavailable', 'The worker is at capacity; retry shortly.', {
            code: 'capacity_exceeded',
            retryAfterSeconds: 1,
          }),
        );
      }
      return new Promise((resolve, reject) => {
        const waiter = {
          grant: () => {
            signal.removeEventListener('abort', onAbort);
            resolve(releaseOnce());
          },
        };
        const onAbort = (): void => {
          const i = waiters.indexOf(waiter);
          if (i >= 0) waiters.splice(i, 1);
          reject(new AppError('cancelled', 'request cancelled'));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        waiters.push(waiter);
      });
    },
  };
}
