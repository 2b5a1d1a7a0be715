/**
 * Keeps the gateway's fleet in step with the fleet registry: follows RegistryService.WatchWorkers (a
 * snapshot, then every join and leave) and adds or removes workers in it, so workers join and
 * leave without a gateway restart. The stream reconnects with backoff. While it is down, and for
 * one lease time after a fresh snapshot, workers already known are kept: a restarted registry is
 * empty until workers renew their leases, and requests must keep flowing meanwhile.
 */
import { delay } from 'abort-controller-x';
import type { Logger } from 'pino';
import { RegistryServiceDefinition, type RegisteredWorker } from '../../../gen/xerotier/registry/v1/registry_service.js';
import { callOptions, createAppClient, createGrpcChannel } from '../../../lib/grpc/client.js';
import type { GrpcTlsFiles } from '../../../lib/grpc/tls.js';
import type { Fleet } from './fleet.js';

export interface RegistryWatchOptions {
  address: string;
  serviceToken?: string | undefined;
  tls?: GrpcTlsFiles | undefined;
  fleet: Fleet;
  logger: Logger;
  /** How long a worker missing from a fresh snapshot is kept before it is dropped. */
  staleAfterMs: number;
}

export interface RegistryWatch {
  /** Whether the watch stream is connected now. */
  connected(): boolean;
  close(): void;
}

export function watchRegistry(options: RegistryWatchOptions): RegistryWatch {
  const { fleet, logger } = options;
  const channel = createGrpcChannel(options.address, options.tls);
  const client = createAppClient(RegistryServiceDefinition, channel, {
    address: options.address,
    target: 'fleet registry',
    serviceToken: options.serviceToken,
  });
  const stop = new AbortController();
  /** worker_id → address, for removals (the stream names the id). */
  const known = new Map<string, string>();
  /** Addresses missing from the last snapshot, dropped when their grace ends unless they return. */
  const pending = new Map<string, NodeJS.Timeout>();
  let connected = false;

  const upsert = (w: RegisteredWorker): void => {
    const previous = known.get(w.workerId);
    if (previous !== undefined && previous !== w.address) fleet.remove(previous, 'registry');
    // One worker per address: a worker restarted in place under a new id takes the address over,
    // so the old id's later removal (its lease expiring) no longer names it.
    for (const [id, address] of known) if (id !== w.workerId && address === w.address) known.delete(id);
    known.set(w.workerId, w.address);
    clearTimeout(pending.get(w.address));
    pending.delete(w.address);
    fleet.add({ pool: w.pool, address: w.address, models: w.models.map((m) => m.id), owner: w.ownerProject }, 'registry');
  };
  const removeId = (workerId: string): void => {
    const address = known.get(workerId);
    known.delete(workerId);
    if (address !== undefined) fleet.remove(address, 'registry');
  };
  const snapshot = (workers: RegisteredWorker[]): void => {
    const present = new Set(workers.map((w) => w.address));
    for (const w of workers) upsert(w);
    for (const [id, address] of known) {
      if (present.has(address) || pending.has(address)) continue;
      pending.set(
        address,
        setTimeout(() => {
          pending.delete(address);
          if (known.get(id) === address) removeId(id);
        }, options.staleAfterMs).unref(),
      );
    }
  };

  void (async () => {
    let backoff = 100;
    while (!stop.signal.aborted) {
      try {
        for await (const event of client.watchWorkers({}, callOptions('registry-watch', stop.signal))) {
          if (!connected) logger.info({ registry: options.address }, 'fleet registry watch connected');
          connected = true;
          backoff = 100;
          if (event.snapshot) snapshot(event.snapshot.workers);
          else if (event.upserted) upsert(event.upserted);
          else if (event.removed !== undefined) removeId(event.removed);
        }
      } catch (err) {
        if (stop.signal.aborted) return;
        if (connected) logger.warn({ registry: options.address, err }, 'fleet registry watch lost; keeping the known workers');
      }
      connected = false;
      await delay(stop.signal, backoff).catch(() => undefined);
      backoff = Math.min(backoff * 2, 2000);
    }
  })();

  return {
    connected: () => connected,
    close() {
      stop.abort();
      for (const t of pending.values()) clearTimeout(t);
      channel.close();
    },
  };
}
