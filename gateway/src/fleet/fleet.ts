/**
 * The gateway's fleet: every inference worker it may route to (static seed plus workers learned
 * from the registry), each in a hardware pool ("pool" always means a hardware class here), and
 * the choice of one for a request: only workers
 * that are healthy (status stream alive, model loaded, not draining), whose breaker admits calls
 * and that have free capacity; among them the least loaded by their own signals
 * (in flight + queued relative to capacity, then time to first token).
 */
import { delay } from 'abort-controller-x';
import type { Logger } from 'pino';
import {
  InferenceServiceDefinition,
  type WorkerStatus,
} from '../../../gen/xerotier/inference/v1/inference_service.js';
import { AppError } from '../../../lib/errors/app-error.js';
import { callOptions, createAppClient, createGrpcChannel, type AppClient } from '../../../lib/grpc/client.js';
import type { GrpcTlsFiles } from '../../../lib/grpc/tls.js';
import type { Channel } from 'nice-grpc';
import type { Breaker, BreakerState } from '../breaker.js';

export interface Worker {
  /** Address the gateway dials; the worker's own id arrives with its status. */
  address: string;
  pool: string;
  /**
   * Where the gateway learned of the worker: the static seed list, the fleet registry, or a
   * self-hosted worker's tunnel (its client is the tunnel, not a dialled channel).
   */
  source: 'static' | 'registry' | 'tunnel';
  /** Project id owning the worker (self-hosted); undefined = shared capacity. */
  owner?: string | undefined;
  client: AppClient<typeof InferenceServiceDefinition>;
  breaker: Breaker;
  /** Calls this gateway has open on the worker (known before the worker reports them). */
  localInFlight: number;
  /** localInFlight when the last status arrived: corrects the report for changes since. */
  localAtStatus: number;
  status: WorkerStatus | undefined;
  /** Whether the status stream is currently connected. */
  connected: boolean;
}

export interface WorkerSpec {
  pool: string;
  address: string;
  /** Project id owning the worker: it serves that project's requests only. */
  owner?: string | undefined;
}

/** What a request needs from a worker: one of these pools, and not owned by another project. */
export interface PickRequest {
  pools: readonly string[];
  /** The caller's project id; owned workers of other projects are never picked. */
  project?: string | undefined;
}

export interface Fleet {
  /** The workers requests may be sent to now. */
  readonly workers: readonly Worker[];
  /** Picks the best worker among `pools`, skipping `exclude`; throws a 503 AppError if none. */
  pick(request: PickRequest, exclude: ReadonlySet<Worker>): Worker;
  /** Adds a worker learned at run time (no-op when one with that address exists). */
  add(spec: WorkerSpec, source: Worker['source']): void;
  /**
   * Stops routing to the worker at `address` if it came from `source` (the registry never removes
   * a static worker). Calls already open on it finish; its connection closes once they have.
   */
  remove(address: string, source: Worker['source']): void;
  /**
   * Adds a worker whose client is given (a self-hosted worker's tunnel) under a unique `address`
   * label; its status comes from that client's WatchStatus like any other. Remove it with
   * remove(address, 'tunnel').
   */
  attach(spec: WorkerSpec, client: Worker['client']): Worker;
  close(): Promise<void>;
}

export interface FleetOptions {
  /** The static seed list (INFERENCE_WORKERS). */
  workers: WorkerSpec[];
  serviceToken?: string | undefined;
  tls?: GrpcTlsFiles | undefined;
  logger: Logger;
  createBreaker: (name: string) => Breaker;
}

interface Member {
  worker: Worker;
  /** Undefined for an attached (tunnel) worker. */
  channel: Channel | undefined;
  /** Ends the status watch. */
  stop: AbortController;
}

export function createFleet(options: FleetOptions): Fleet {
  const members = new Map<string, Member>();
  let workers: Worker[] = [];
  const retired = new Set<Member>();

  const add = (spec: WorkerSpec, source: Worker['source']): void => {
    if (members.has(spec.address)) return;
    const channel = createGrpcChannel(spec.address, options.tls);
    const worker: Worker = {
      address: spec.address,
      pool: spec.pool,
      source,
      owner: spec.owner,
      client: createAppClient(InferenceServiceDefinition, channel, {
        address: spec.address,
        target: 'inference worker',
        serviceToken: options.serviceToken,
      }),
      breaker: options.createBreaker(`inference:${spec.pool}@${spec.address}`),
      localInFlight: 0,
      localAtStatus: 0,
      status: undefined,
      connected: false,
    };
    const member = { worker, channel, stop: new AbortController() };
    members.set(spec.address, member);
    workers = [...workers, worker];
    void watch(worker, member.stop.signal, options.logger);
  };
  for (const spec of options.workers) add(spec, 'static');

  // A removed worker's channel stays open until its last call ends (checked every second).
  const reaper = setInterval(() => {
    for (const m of retired) {
      if (m.worker.localInFlight > 0) continue;
      retired.delete(m);
      m.channel?.close();
      m.worker.breaker.shutdown();
    }
  }, 1000);
  reaper.unref();

  return {
    get workers() {
      return workers;
    },
    add,
    attach(spec, client) {
      const previous = members.get(spec.address);
      if (previous) this.remove(spec.address, previous.worker.source);
      const worker: Worker = {
        address: spec.address,
        pool: spec.pool,
        source: 'tunnel',
        owner: spec.owner,
        client,
        breaker: options.createBreaker(`inference:${spec.pool}@${spec.address}`),
        localInFlight: 0,
        localAtStatus: 0,
        status: undefined,
        connected: false,
      };
      const member = { worker, channel: undefined, stop: new AbortController() };
      members.set(spec.address, member);
      workers = [...workers, worker];
      void watch(worker, member.stop.signal, options.logger);
      return worker;
    },
    remove(address, source) {
      const member = members.get(address);
      if (member?.worker.source !== source) return;
      members.delete(address);
      workers = workers.filter((w) => w !== member.worker);
      member.stop.abort();
      member.worker.connected = false;
      retired.add(member);
    },
    pick({ pools, project }, exclude) {
      const eligible = workers.filter(
        (w) => pools.includes(w.pool) && (w.owner === undefined || w.owner === project) && !exclude.has(w),
      );
      if (eligible.length === 0) {
        throw new AppError('unavailable', 'No inference worker serves this endpoint right now.', {
          code: 'no_healthy_worker',
          retryAfterSeconds: 5,
        });
      }
      const healthy = eligible.filter((w) => isHealthy(w) && w.breaker.state() !== 'open');
      if (healthy.length === 0) {
        const soonest = Math.min(...eligible.map((w) => w.breaker.retryAfterSeconds() || 2));
        throw new AppError('unavailable', 'No healthy inference worker is available; retry shortly.', {
          code: 'no_healthy_worker',
          retryAfterSeconds: soonest,
        });
      }
      const free = healthy.filter((w) => load(w) < 1);
      if (free.length === 0) {
        throw new AppError('unavailable', 'All inference workers for this endpoint are at capacity; retry shortly.', {
          code: 'capacity_exceeded',
          retryAfterSeconds: 1,
        });
      }
      // Prefer a closed breaker over a half-open one, then the least loaded, then the fastest.
      free.sort(
        (a, b) =>
          stateRank(a.breaker.state()) - stateRank(b.breaker.state()) ||
          load(a) - load(b) ||
          (a.status?.timeToFirstTokenMs ?? 0) - (b.status?.timeToFirstTokenMs ?? 0),
      );
      return free[0]!;
    },
    async close() {
      clearInterval(reaper);
      for (const m of [...members.values(), ...retired]) {
        m.stop.abort();
        m.worker.breaker.shutdown();
        m.channel?.close();
      }
      members.clear();
      retired.clear();
      workers = [];
    },
  };
}

function isHealthy(w: Worker): boolean {
  return w.connected && w.status !== undefined && w.status.modelLoaded && !w.status.draining;
}

const stateRank = (s: BreakerState): number => (s === 'closed' ? 0 : 1);

/**
 * Load as a fraction of what the worker can hold (running + queue). The worker's report lags by
 * up to one status update, so it is corrected by this gateway's own calls opened or closed since
 * (other gateways' changes show up with the next report); our own open calls are a floor.
 */
function load(w: Worker): number {
  const s = w.status;
  if (!s) return 1;
  const room = Math.max(1, s.capacity + s.queueCapacity);
  const reported = s.inFlightCount + s.queuedCount + (w.localInFlight - w.localAtStatus);
  return Math.max(w.localInFlight, reported) / room;
}

/** Follows the worker's status stream for as long as it is in the fleet, reconnecting with backoff. */
async function watch(worker: Worker, signal: AbortSignal, logger: Logger): Promise<void> {
  let backoff = 100;
  while (!signal.aborted) {
    try {
      for await (const update of worker.client.watchStatus({ intervalMs: 1000 }, callOptions('status-watch', signal))) {
        if (!worker.connected) logger.info({ worker: worker.address, pool: worker.pool }, 'worker connected');
        worker.connected = true;
        worker.status = update.status;
        worker.localAtStatus = worker.localInFlight;
        backoff = 100;
      }
    } catch (err) {
      if (signal.aborted) return;
      if (worker.connected) logger.warn({ worker: worker.address, pool: worker.pool, err }, 'worker status stream lost');
    }
    worker.connected = false;
    await delay(signal, backoff).catch(() => undefined);
    backoff = Math.min(backoff * 2, 2000);
  }
}
