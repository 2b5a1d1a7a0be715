/**
 * The cluster primary of a gateway with GATEWAY_PROCESSES > 1: it forks that many gateway
 * processes (each runs startGateway; node:cluster shares GATEWAY_PORT and GATEWAY_GRPC_PORT between
 * them, the primary handing each new connection to one of them in turn), restarts one that dies
 * unexpectedly (with the supervisor's backoff, so a crash loop slows down), and on stop asks every
 * process to drain and waits for all of them. It serves no client itself.
 *
 * Start fails (and ends the processes already started) if a process exits before every process
 * listened once: that is a configuration or port problem a restart would only repeat.
 */
import type { Cluster, Worker as ClusterWorker } from 'node:cluster';
import type { Logger } from 'pino';
import { nextCrashCount, restartDelay, type BackoffPolicy } from '../../../lib/process/backoff.js';
import { isToPrimary, type MetricsJson, type ToChild } from './messages.js';

/** Environment variables a gateway process learns its place from (gateway/src/main.ts reads them). */
export const PROCESS_INDEX_ENV = 'XERO_GATEWAY_PROCESS';
export const PROCESS_COUNT_ENV = 'XERO_GATEWAY_PROCESSES';

export type ProcessState = 'starting' | 'ready' | 'restarting' | 'stopping' | 'stopped';

/** One gateway process as the primary's operator view shows it. */
export interface ProcessView {
  process: number;
  pid: number | null;
  state: ProcessState;
  /** Restarts of this process slot since the primary started. */
  restarts: number;
}

/** One process's answer to a snapshot request. */
export interface ProcessSnapshot {
  process: number;
  pid: number;
  metrics: MetricsJson;
  workers: unknown[];
}

export interface PrimaryOptions {
  /** node:cluster (the module), passed in by the composition root. */
  cluster: Cluster;
  logger: Logger;
  processes: number;
  backoff: BackoffPolicy;
  /** Milliseconds clock (restart streaks). */
  now: () => number;
}

export interface GatewayPrimary {
  /** Every process listens (the shared ports as bound); rejects if one could not start. */
  readonly ready: Promise<{ port: number; grpcPort: number }>;
  processes(): ProcessView[];
  /** Metrics and operator views of every ready process; rejects if one does not answer in time. */
  snapshots(timeoutMs: number): Promise<ProcessSnapshot[]>;
  /** Asks every process to drain, waits for all; rejects if one ended abnormally meanwhile. */
  stop(): Promise<void>;
  /** Ends every process at once (SIGKILL): startup failures and forced exits. */
  kill(): void;
}

interface Slot {
  index: number;
  worker: ClusterWorker | undefined;
  state: ProcessState;
  startedAt: number;
  crashes: number;
  restarts: number;
  timer: NodeJS.Timeout | undefined;
  /** The running process's exit (resolved at once when none runs). */
  exited: Promise<void>;
}

interface PendingSnapshot {
  waiting: Set<number>;
  answers: ProcessSnapshot[];
  resolve(answers: ProcessSnapshot[]): void;
}

export function startGatewayPrimary(options: PrimaryOptions): GatewayPrimary {
  const { cluster, logger } = options;
  const slots: Slot[] = [];
  const pending = new Map<number, PendingSnapshot>();
  let nextSnapshot = 1;
  let stopping = false;
  let everyoneReady = false;
  let abnormalStop: string | undefined;
  let ports: { port: number; grpcPort: number } | undefined;
  let settle: { resolve(p: { port: number; grpcPort: number }): void; reject(err: Error): void } | undefined;
  const ready = new Promise<{ port: number; grpcPort: number }>((resolve, reject) => {
    settle = { resolve, reject };
  });

  const describeExit = (code: number | null, signal: string | null) => (signal ? { signal } : { exit_code: code });

  const failStart = (slot: Slot, code: number | null, signal: string | null): void => {
    const how = signal ? `signal ${signal}` : `code ${code}`;
    logger.error({ process: slot.index, ...describeExit(code, signal) }, 'gateway process could not start; stopping the others');
    stopping = true;
    for (const s of slots) s.worker?.process.kill('SIGKILL');
    settle?.reject(new Error(`gateway process ${slot.index} of ${options.processes} exited (${how}) before it listened`));
    settle = undefined;
  };

  const onReady = (slot: Slot, port: number, grpcPort: number): void => {
    if (slot.state !== 'starting') return;
    slot.state = 'ready';
    if (slot.restarts > 0) logger.info({ process: slot.index, pid: slot.worker?.process.pid }, 'gateway process restarted and listening');
    ports ??= { port, grpcPort };
    if (!everyoneReady && slots.every((s) => s.state === 'ready')) {
      everyoneReady = true;
      settle?.resolve(ports);
      settle = undefined;
    }
  };

  const answer = (process: number, pid: number, id: number, metrics: MetricsJson, workers: unknown[]): void => {
    const request = pending.get(id);
    if (!request?.waiting.delete(process)) return;
    request.answers.push({ process, pid, metrics, workers });
    if (request.waiting.size === 0) {
      pending.delete(id);
      request.resolve(request.answers);
    }
  };

  const fork = (slot: Slot): void => {
    slot.timer = undefined;
    slot.state = 'starting';
    slot.startedAt = options.now();
    const worker = cluster.fork({ [PROCESS_INDEX_ENV]: String(slot.index), [PROCESS_COUNT_ENV]: String(options.processes) });
    slot.worker = worker;
    slot.exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (message: unknown) => {
      if (!isToPrimary(message)) return;
      if (message.xero === 'ready') onReady(slot, message.port, message.grpcPort);
      else answer(slot.index, worker.process.pid ?? 0, message.id, message.metrics, message.workers);
    });
    // A process that died can no longer answer a snapshot: stop waiting for it.
    worker.once('exit', (code: number | null, signal: string | null) => {
      for (const [id, request] of pending) {
        if (request.waiting.delete(slot.index) && request.waiting.size === 0) {
          pending.delete(id);
          request.resolve(request.answers);
        }
      }
      onExit(slot, worker, code, signal);
    });
  };

  const onExit = (slot: Slot, worker: ClusterWorker, code: number | null, signal: string | null): void => {
    if (slot.worker !== worker) return;
    const wasReady = slot.state === 'ready';
    slot.worker = undefined;
    if (stopping) {
      // During the drain a process that was serving must end as a stopped gateway does: code 0.
      if (slot.state === 'stopping' && (code !== 0 || signal !== null)) {
        abnormalStop ??= `gateway process ${slot.index} ended its drain with ${signal ? `signal ${signal}` : `code ${code}`}`;
      }
      slot.state = 'stopped';
      return;
    }
    if (!everyoneReady) return failStart(slot, code, signal);
    slot.crashes = nextCrashCount(slot.crashes, wasReady ? options.now() - slot.startedAt : 0, options.backoff);
    const delay = restartDelay(slot.crashes, options.backoff);
    slot.state = 'restarting';
    slot.restarts += 1;
    logger.warn(
      { process: slot.index, pid: worker.process.pid, ...describeExit(code, signal), restart_in_ms: delay },
      'gateway process exited unexpectedly; restarting it',
    );
    slot.timer = setTimeout(() => fork(slot), delay);
  };

  for (let index = 1; index <= options.processes; index++) {
    const slot: Slot = {
      index,
      worker: undefined,
      state: 'starting',
      startedAt: options.now(),
      crashes: 0,
      restarts: 0,
      timer: undefined,
      exited: Promise.resolve(),
    };
    slots.push(slot);
  }
  for (const slot of slots) fork(slot);

  return {
    ready,
    processes: () =>
      slots.map((s) => ({ process: s.index, pid: s.worker?.process.pid ?? null, state: s.state, restarts: s.restarts })),
    snapshots(timeoutMs) {
      const targets = slots.filter((s) => s.state === 'ready' && s.worker?.isConnected());
      if (targets.length === 0) return Promise.resolve([]);
      const id = nextSnapshot++;
      return new Promise<ProcessSnapshot[]>((resolve, reject) => {
        const timer = setTimeout(() => {
          const request = pending.get(id);
          pending.delete(id);
          const missing = request ? [...request.waiting].join(', ') : '';
          reject(new Error(`gateway process ${missing} did not answer within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, {
          waiting: new Set(targets.map((s) => s.index)),
          answers: [],
          resolve: (answers) => {
            clearTimeout(timer);
            resolve(answers.sort((a, b) => a.process - b.process));
          },
        });
        const message: ToChild = { xero: 'snapshot', id };
        for (const s of targets) s.worker?.send(message);
      });
    },
    async stop() {
      stopping = true;
      for (const slot of slots) {
        clearTimeout(slot.timer);
        slot.timer = undefined;
        const worker = slot.worker;
        if (!worker) {
          slot.state = 'stopped';
          continue;
        }
        if (slot.state === 'ready') {
          slot.state = 'stopping';
          const message: ToChild = { xero: 'stop' };
          worker.send(message);
        } else {
          // Still starting: nothing to drain.
          worker.process.kill('SIGTERM');
        }
      }
      await Promise.all(slots.map((s) => s.exited));
      if (abnormalStop !== undefined) throw new Error(abnormalStop);
    },
    kill() {
      stopping = true;
      for (const slot of slots) {
        clearTimeout(slot.timer);
        slot.worker?.process.kill('SIGKILL');
      }
    },
  };
}
