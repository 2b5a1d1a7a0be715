/**
 * The live worker set: one lease per worker id, renewed by every Register call and removed when it
 * expires or the worker deregisters. Watchers get every change; a renewal that changes nothing is
 * not a change. An address belongs to one worker: a worker that registers at an address another
 * lease holds (a crashed worker restarted in place, under a new id, before its old lease expired)
 * supersedes that lease, which is removed first; otherwise the old lease's expiry would later
 * take the address, and so the new worker, out of every gateway. Held in memory on purpose: leases are short-lived facts that workers re-assert
 * every few seconds, so a restarted registry is complete again within one renewal interval.
 */
import type { RegisteredWorker } from '../../../../gen/xerotier/registry/v1/registry_service.js';

export type LeaseEvent = { kind: 'upserted'; worker: RegisteredWorker } | { kind: 'removed'; workerId: string; reason: 'deregistered' | 'expired' | 'superseded' };

export interface LeaseTable {
  /** Adds or renews a worker's lease. */
  upsert(worker: RegisteredWorker): void;
  remove(workerId: string): void;
  list(): RegisteredWorker[];
  /** Calls `listener` for every change until the returned function is called. */
  subscribe(listener: (event: LeaseEvent) => void): () => void;
  /** Removes expired leases (called on a timer by the service, directly by tests). */
  sweep(): void;
  readonly ttlMs: number;
}

export function createLeaseTable(options: { ttlMs: number; now?: () => number }): LeaseTable {
  const now = options.now ?? Date.now;
  const leases = new Map<string, { worker: RegisteredWorker; fingerprint: string; expiresAt: number }>();
  const listeners = new Set<(event: LeaseEvent) => void>();
  const emit = (event: LeaseEvent): void => {
    for (const l of listeners) l(event);
  };
  return {
    ttlMs: options.ttlMs,
    upsert(worker) {
      const fingerprint = JSON.stringify(worker);
      for (const [id, lease] of leases) {
        if (id !== worker.workerId && lease.worker.address === worker.address) {
          leases.delete(id);
          emit({ kind: 'removed', workerId: id, reason: 'superseded' });
        }
      }
      const previous = leases.get(worker.workerId);
      leases.set(worker.workerId, { worker, fingerprint, expiresAt: now() + options.ttlMs });
      if (previous?.fingerprint !== fingerprint) emit({ kind: 'upserted', worker });
    },
    remove(workerId) {
      if (leases.delete(workerId)) emit({ kind: 'removed', workerId, reason: 'deregistered' });
    },
    list: () => [...leases.values()].map((l) => l.worker),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    sweep() {
      const t = now();
      for (const [id, lease] of leases) {
        if (lease.expiresAt <= t) {
          leases.delete(id);
          emit({ kind: 'removed', workerId: id, reason: 'expired' });
        }
      }
    },
  };
}
