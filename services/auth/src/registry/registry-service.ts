/**
 * RegistryService over the lease table: Register/Deregister for workers, WatchWorkers for gateways
 * (a snapshot, then every change, for as long as the gateway listens). Expired leases are swept
 * every quarter of the lease time; each join and leave is logged once.
 */
import type { Logger } from 'pino';
import type { CallContext } from 'nice-grpc-common';
import type {
  DeepPartial,
  RegisteredWorker,
  RegistryServiceImplementation,
  WatchWorkersResponse,
} from '../../../../gen/xerotier/registry/v1/registry_service.js';
import { invalidRequest } from '../../../../lib/errors/app-error.js';
import type { LeaseEvent, LeaseTable } from './lease-table.js';

const ADDRESS = /^[A-Za-z0-9.[\]:-]{1,253}:\d{1,5}$/;
const ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface RegistryService {
  impl: RegistryServiceImplementation;
  close(): void;
}

export function createRegistryService(table: LeaseTable, logger: Logger): RegistryService {
  const unsubscribeLog = table.subscribe((e) => {
    if (e.kind === 'upserted') {
      const { workerId, address, pool, ownerProject } = e.worker;
      logger.info({ workerId, address, pool, models: e.worker.models.map((m) => m.id), owner: ownerProject || undefined }, 'worker registered');
    }
    else logger.info({ workerId: e.workerId, reason: e.reason }, 'worker left the registry');
  });
  // Ends every watch when the service stops, so shutdown does not wait for gateways to hang up.
  const closed = new AbortController();
  const sweeper = setInterval(() => table.sweep(), Math.max(50, Math.floor(table.ttlMs / 4)));
  sweeper.unref();

  const impl: RegistryServiceImplementation = {
    async register(request) {
      const w = request.worker;
      if (!w || !ID.test(w.workerId)) throw invalidRequest('worker.worker_id is required (letters, digits, . _ : -).', { param: 'worker.worker_id' });
      if (!ADDRESS.test(w.address)) throw invalidRequest('worker.address must be host:port.', { param: 'worker.address' });
      if (!w.pool) throw invalidRequest('worker.pool is required.', { param: 'worker.pool' });
      table.upsert(w);
      return { leaseTtlMs: table.ttlMs };
    },
    async deregister(request) {
      table.remove(request.workerId);
      return {};
    },
    async *watchWorkers(_request, context: CallContext): AsyncIterable<DeepPartial<WatchWorkersResponse>> {
      const queue: LeaseEvent[] = [];
      let wake: (() => void) | undefined;
      const unsubscribe = table.subscribe((e) => {
        queue.push(e);
        wake?.();
      });
      const signal = AbortSignal.any([context.signal, closed.signal]);
      const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      try {
        yield { snapshot: { workers: table.list() } };
        while (!signal.aborted) {
          const event = queue.shift();
          if (!event) {
            await Promise.race([new Promise<void>((resolve) => (wake = resolve)), aborted]);
            wake = undefined;
            continue;
          }
          yield event.kind === 'upserted' ? { upserted: event.worker as RegisteredWorker } : { removed: event.workerId };
        }
      } finally {
        unsubscribe();
      }
    },
  };
  return {
    impl,
    close() {
      closed.abort();
      clearInterval(sweeper);
      unsubscribeLog();
    },
  };
}
