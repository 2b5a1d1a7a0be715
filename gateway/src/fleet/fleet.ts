/**
 * The gateway's fleet: every inference worker it may route to (static seed plus workers learned
 * from the registry), each in a hardware pool ("pool" always means a hardware class here), and
 * the choice of one for a request: only workers eligible for it (eligibility.ts: pool, model,
 * owner) that are healthy (status stream alive, model loaded, not draining), whose breaker admits calls
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
import { createGenerateChannel } from './generate-channel.js';
import { callOptions, createAppClient, createGrpcChannel, type AppClient } from '../../../lib/grpc/client.js';
import type { GrpcTlsFiles } from '../../../lib/grpc/tls.js';
import type { Channel } from 'nice-grpc';
import type { Breaker, BreakerState } from '../breaker.js';
import { eligibleWorkers, type RouteRequest } from './eligibility.js';
import type { Candidate, Dispatch, RoutingHint } from './scoring/candidate.js';
import type { Router } from './scoring/router.js';

export type { RouteRequest } from './eligibility.js';

export interface Worker {
  /** Address the gateway dials; the worker's own id arrives with its status. */
  address: string;
  pool: string;
  /**
   * Where the gateway learned of the worker: the static seed list, the fleet registry, or a
   * self-hosted worker's tunnel (its client is the tunnel, not a dialled channel).
   */
  source: 'static' | 'registry' | 'tunnel';
  client: AppClient<typeof InferenceServiceDefinition>;
  breaker: Breaker;
  /** Calls this gateway has open on the worker (known before the worker reports them). */
  localInFlight: number;
  /** localInFlight when the last status arrived: corrects the report for changes since. */
  localAtStatus: number;
  status: WorkerStatus | undefined;
  /** Whether the status stream is currently connected. */
  connected: boolean;
  /**
   * Platform model ids the worker serves: from its registry record, then from its own status
   * stream (the only source for static seed workers); undefined until either has said.
   */
  models: readonly string[] | undefined;
  /** Owning project id (self-hosted workers): eligible only for that project's requests. */
  owner: string | undefined;
}

export interface WorkerSpec {
  pool: string;
  address: string;
  /** Platform model ids, when known up front (registry record); else learned from the status stream. */
  models?: readonly string[];
  /** Owning project id; absent or empty = shared capacity. */
  owner?: string;
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
   * Picks a worker eligible for `request` (eligibility.ts: pool, model, owner), skipping
   * `exclude`; throws 404 model_not_found / 503 (model_unavailable, no_healthy_worker,
   * capacity_exceeded) if none. With `routing` the routing pipeline chooses among the eligible
   * workers (and remembers the choice); without it this only checks that one could take the
   * request (the least loaded is returned).
   */
  pick(request: RouteRequest, exclude: ReadonlySet<Worker>, routing?: RoutingRequest): Worker;
  /**
   * Adds a worker learned at run time; when one with that address exists, only takes its models
   * and owner from `spec` (a registry record that changed).
   */
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
  /** Called once a removed worker's breaker is shut down (drop it from lists and metrics). */
  dropBreaker?: ((breaker: Breaker) => void) | undefined;
  router: Router;
  /** How generations reach dialled workers (GATEWAY_WORKER_CALLS): one channel each, or one Generate call each. */
  workerCalls: 'channel' | 'stream';
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
  /**
   * Every (owner, model id) advertised since start ('' = shared): such a model stays known to the
   * projects that could see it (503 model_unavailable, not 404) after its workers left.
   */
  const seenModels = new Set<string>();
  const seenKey = (owner: string, model: string): string => `${owner}\u0000${model}`;
  const seenBefore = (model: string, project: string): boolean =>
    seenModels.has(seenKey('', model)) || (project !== '' && seenModels.has(seenKey(project, model)));
  const learnModels = (worker: Worker, models: readonly string[]): void => {
    if (worker.models !== undefined && worker.models.join('\n') !== models.join('\n')) {
      options.logger.info({ worker: worker.address, pool: worker.pool, models, previous: worker.models }, 'worker now serves other models');
    }
    worker.models = models;
    for (const m of models) seenModels.add(seenKey(worker.owner ?? '', m));
  };

  const add = (spec: WorkerSpec, source: Worker['source']): void => {
    const existing = members.get(spec.address);
    if (existing) {
      if (spec.owner !== undefined) existing.worker.owner = spec.owner === '' ? undefined : spec.owner;
      if (spec.models !== undefined) learnModels(existing.worker, spec.models);
      return;
    }
    const channel = createGrpcChannel(spec.address, options.tls);
    const grpcClient = createAppClient(InferenceServiceDefinition, channel, {
      address: spec.address,
      target: 'inference worker',
      serviceToken: options.serviceToken,
    });
    const client =
      options.workerCalls === 'channel' ? { ...grpcClient, generate: createGenerateChannel(grpcClient).generate } : grpcClient;
    join(spec, source, client, channel);
  };

  /** Makes a worker of `spec` routable and follows its status stream (through `client`). */
  const join = (spec: WorkerSpec, source: Worker['source'], client: Worker['client'], channel: Channel | undefined): Worker => {
    const worker: Worker = {
      address: spec.address,
      pool: spec.pool,
      source,
      client,
      breaker: options.createBreaker(`inference:${spec.pool}@${spec.address}`),
      localInFlight: 0,
      localAtStatus: 0,
      status: undefined,
      connected: false,
      models: undefined,
      owner: spec.owner === '' ? undefined : spec.owner,
    };
    if (spec.models !== undefined) learnModels(worker, spec.models);
    const member = { worker, channel, stop: new AbortController() };
    members.set(spec.address, member);
    workers = [...workers, worker];
    options.logger.info({ worker: spec.address, pool: spec.pool, source, models: spec.models, owner: worker.owner }, 'worker added to the fleet');
    void watch(worker, member.stop.signal, options.logger, learnModels);
    return worker;
  };
  for (const spec of options.workers) add(spec, 'static');

  // A removed worker's channel stays open until its last call ends (checked every second).
  const reaper = setInterval(() => {
    for (const m of retired) {
      if (m.worker.localInFlight > 0) continue;
      retired.delete(m);
      m.channel?.close();
      m.worker.breaker.shutdown();
      options.dropBreaker?.(m.worker.breaker);
    }
  }, 1000);
  reaper.unref();

  return {
    get workers() {
      return workers;
    },
    router: options.router,
    add,
    attach(spec, client) {
      const previous = members.get(spec.address);
      if (previous) this.remove(spec.address, previous.worker.source);
      return join(spec, 'tunnel', client, undefined);
    },
    remove(address, source) {
      const member = members.get(address);
      if (member?.worker.source !== source) return;
      members.delete(address);
      workers = workers.filter((w) => w !== member.worker);
      member.stop.abort();
      member.worker.connected = false;
      options.logger.info({ worker: address, pool: member.worker.pool, source, workerId: member.worker.status?.workerId }, 'worker removed from the fleet');
      retired.add(member);
    },
    pick(request, exclude, routing) {
      const eligible = eligibleWorkers(workers, request, seenBefore).filter((w) => !exclude.has(w));
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

/** The routing pipeline's view of an eligible worker (its status is known: it is healthy). */
function candidate(w: Worker): Candidate {
  const s = w.status!;
  return {
    key: w,
    address: w.address,
    inFlight: Math.max(w.localInFlight, s.inFlightCount + s.queuedCount + (w.localInFlight - w.localAtStatus)),
    capacity: Math.max(1, s.capacity),
    reportedTtftMs: s.timeToFirstTokenMs > 0 ? s.timeToFirstTokenMs : undefined,
    owner: w.owner,
  };
}

/** Follows the worker's status stream for as long as it is in the fleet, reconnecting with backoff. */
async function watch(
  worker: Worker,
  signal: AbortSignal,
  logger: Logger,
  learnModels: (worker: Worker, models: readonly string[]) => void,
): Promise<void> {
  let backoff = 100;
  while (!signal.aborted) {
    try {
      for await (const update of worker.client.watchStatus({ intervalMs: 1000 }, callOptions('status-watch', signal))) {
        if (!worker.connected) logger.info({ worker: worker.address, pool: worker.pool }, 'worker connected');
        worker.connected = true;
        worker.status = update.status;
        if (update.status && update.status.models.length > 0) learnModels(worker, update.status.models.map((m) => m.id));
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
