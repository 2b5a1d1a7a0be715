/**
 * Tier priority under contention: while the workers a request could go to already hold queued
 * requests (paid traffic is waiting), Free-tier requests may occupy at most `share` of those
 * workers' running capacity (at least one slot); a Free request beyond that is refused with 503
 * capacity_exceeded and Retry-After, so paid tiers' time to first token holds. Without a queue
 * Free uses whatever is idle. Paid requests are never limited here.
 */
import { AppError } from '../../../../lib/errors/app-error.js';
import type { Candidate } from './candidate.js';

export interface FreeShare {
  /** Throws capacity_exceeded when a Free request may not start now; else counts it. */
  admit(candidates: readonly Candidate[]): void;
  /** A Free request admitted by `admit` ended. */
  end(): void;
  inFlight(): number;
}

export function createFreeShare(share: number): FreeShare {
  let running = 0;
  return {
    admit(candidates) {
      const queued = candidates.some((c) => c.inFlight > c.capacity);
      const capacity = candidates.reduce((n, c) => n + c.capacity, 0);
      const allowed = Math.max(1, Math.floor(share * capacity));
      if (queued && running >= allowed) {
        throw new AppError('unavailable', 'Free-tier capacity is in use by paid traffic right now; retry shortly.', {
          code: 'capacity_exceeded',
          retryAfterSeconds: 1,
        });
      }
      running += 1;
    },
    end() {
      running = Math.max(0, running - 1);
    },
    inFlight: () => running,
  };
}
