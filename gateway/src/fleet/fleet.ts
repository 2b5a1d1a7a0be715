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
import type { Candidate, Dispatch, RoutingHint } from './scoring/candidate.js';
import type { Router } from './scoring/router.js';

export interface Worker {
  /** Address the gateway dials; the worker's own id arrives with its status. */
  address: string;
  pool: string;
  /** Where the gateway learned of the worker: the static seed list or the fleet registry. */
  source: 'static' | 'registry';
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
}

/** What the routing pipeline needs of a request (and whether it is Free tier: free-share.ts). */
export interface RoutingRequest extends RoutingHint {
  free: boolean;
  /** Set by `pick`: how the request was sent, handed back with its outcome (router.observe). */
  dispatch?: Dispatch | undefined;
}

export interface Fleet {
  /** The workers requests may be sent to now. */
  readonly workers: readonly Worker[];
  /** Scores, picks and takes the feedback of finished requests (scoring/router.ts). */
  readonly router: Router;
  /**
   * Picks a worker among `pools`, skipping `exclude`; throws a 503 AppError if none. With
   * `routing` the routing pipeline chooses among the eligible workers (and remembers the choice);
   * without it this only checks that one could take the request (the least loaded is returned).
   */
  pick(pools: readonly string[], exclude: ReadonlySet<Worker>, routing?: RoutingRequest): Worker;
  /** Adds a worker learned at run time (no-op when one with that address exists). */
  add(spec: WorkerSpec, source: Worker['source']): void;
  /**
   * Stops routing to the worker at `address` if it came from `source` (the registry never removes
   * a static worker). Calls already open on it finish; its connection closes once they have.
   */
  remove(address: string, source: Worker['source']): void;
  close(): Promise<void>;
}

export interface FleetOptions {
  /** The static seed list (INFERENCE_WORKERS). */
  workers: WorkerSpec[];
  serviceToken?: string | undefined;
  tls?: GrpcTlsFiles | undefined;
  logger: Logger;
  createBreaker: (name: string) => Breaker;
  router: Router;
}

interface Member {
  worker: Worker;
  channel: Channel;
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
      m.channel.close();
      m.worker.breaker.shutdown();
    }
  }, 1000);
  reaper.unref();

  return {
    get workers() {
      return workers;
    },
    router: options.router,
    add,
    remove(address, source) {
      const member = members.get(address);
      if (member?.worker.source !== source) return;
      members.delete(address);
      workers = workers.filter((w) => w !== member.worker);
      member.stop.abort();
      member.worker.connected = false;
      retired.add(member);
    },
    pick(pools, exclude, routing) {
      const eligible = workers.filter((w) => pools.includes(w.pool) && !exclude.has(w));
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
      if (routing) {
        // A half-open breaker is probing: prefer the closed ones while there are any.
        const closed = free.filter((w) => w.breaker.state() === 'closed');
        const pool = closed.length > 0 ? closed : free;
        const candidates = pool.map(candidate);
        if (routing.free) options.router.admitFree(candidates);
        const choice = options.router.choose(candidates, routing);
        routing.dispatch = choice.dispatch;
        return pool[choice.index]!;
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
        m.channel.close();
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

/** The routing pipeline's view of an eligible worker (its status is known: it is healthy). */
function candidate(w: Worker): Candidate {
  const s = w.status!;
  return {
    key: w,
    address: w.address,
    inFlight: Math.max(w.localInFlight, s.inFlightCount + s.queuedCount + (w.localInFlight - w.localAtStatus)),
    capacity: Math.max(1, s.capacity),
    reportedTtftMs: s.timeToFirstTokenMs > 0 ? s.timeToFirstTokenMs : undefined,
    owner: undefined,
  };
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
