/**
 * Runs the platform's processes as children and keeps them running: a child that exits on its
 * own is restarted after an exponential backoff (one log line per restart: which child, its exit
 * code or signal, the delay). Only `stop()` ends them, in stages: every child of one stage gets
 * exactly one SIGTERM and is waited for (SIGKILL after `stopTimeoutMs`) before the next stage.
 *
 * Each child runs in its own process group (`detached`), so a terminal's Ctrl-C reaches the
 * supervisor only and each child sees one signal, the SIGTERM that starts its graceful drain.
 * Children are started with XERO_EXIT_WITH_PARENT=1 (lib/process/run.ts): they stop themselves
 * if the supervisor dies without stopping them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Logger } from 'pino';
import { nextCrashCount, restartDelay, type BackoffPolicy } from '../../lib/process/backoff.js';

export interface ChildSpec {
  name: string;
  /**
   * Entry file relative to the repository root (`gateway/src/main.ts`); run as its compiled
   * JavaScript under dist/ or through the tsx loader (SupervisorOptions.compiled).
   */
  entry: string;
  env: Record<string, string>;
  /** Lower stages stop first; a stage stops only after every child of the previous one exited. */
  stopStage: number;
}

export interface SupervisorOptions {
  root: string;
  /**
   * Run `node dist/<entry>.js` (compiled by scripts/build.mjs: what `npm start` does) instead of
   * `node --import tsx <entry>.ts`.
   */
  compiled: boolean;
  baseEnv: NodeJS.ProcessEnv;
  children: readonly ChildSpec[];
  logger: Logger;
  backoff: BackoffPolicy;
  /** Time a child has after its SIGTERM before it is killed. */
  stopTimeoutMs: number;
}

export interface Supervisor {
  /** Stops every child in stage order; true when all of them exited on their own after SIGTERM. */
  stop(): Promise<boolean>;
  isStopping(): boolean;
}

interface Slot {
  spec: ChildSpec;
  process: ChildProcess | undefined;
  startedAt: number;
  crashes: number;
  restartTimer: NodeJS.Timeout | undefined;
}

/** `node` arguments for an entry: its compiled JavaScript, or the TypeScript through tsx. */
export function childArgs(root: string, entry: string, compiled: boolean): string[] {
  return compiled ? [path.join(root, 'dist', entry.replace(/\.ts$/, '.js'))] : ['--import', 'tsx', path.join(root, entry)];
}

const hasExited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

export function startSupervisor(options: SupervisorOptions): Supervisor {
  const { logger } = options;
  const slots: Slot[] = options.children.map((spec) => ({
    spec,
    process: undefined,
    startedAt: 0,
    crashes: 0,
    restartTimer: undefined,
  }));
  let stopping: Promise<boolean> | undefined;

  const launch = (slot: Slot): void => {
    slot.restartTimer = undefined;
    const child = spawn(process.execPath, childArgs(options.root, slot.spec.entry, options.compiled), {
      cwd: options.root,
      env: { ...options.baseEnv, ...slot.spec.env, XERO_EXIT_WITH_PARENT: '1' },
      stdio: ['ignore', 'inherit', 'inherit'],
      detached: true,
    });
    slot.process = child;
    slot.startedAt = Date.now();
    child.once('error', (err) => logger.error({ child: slot.spec.name, err: err.message }, 'could not start child'));
    child.once('close', (code, signal) => {
      if (stopping !== undefined) return;
      slot.crashes = nextCrashCount(slot.crashes, Date.now() - slot.startedAt, options.backoff);
      const delay = restartDelay(slot.crashes, options.backoff);
      logger.warn(
        { child: slot.spec.name, exit_code: code, signal, restart_in_ms: delay, consecutive_crashes: slot.crashes },
        `${slot.spec.name} exited (${signal ?? `code ${String(code)}`}); restarting in ${delay} ms`,
      );
      slot.restartTimer = setTimeout(() => launch(slot), delay);
    });
  };

  const stopOne = async (slot: Slot): Promise<boolean> => {
    const child = slot.process;
    if (child === undefined || hasExited(child)) return true;
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), options.stopTimeoutMs);
    });
    const late = await Promise.race([exited.then(() => false), timedOut]);
    clearTimeout(timer);
    if (!late) return true;
    logger.error({ child: slot.spec.name, timeout_ms: options.stopTimeoutMs }, `${slot.spec.name} did not stop in time; killing it`);
    child.kill('SIGKILL');
    await exited;
    return false;
  };

  const stopAll = async (): Promise<boolean> => {
    for (const slot of slots) clearTimeout(slot.restartTimer);
    const stages = [...new Set(slots.map((s) => s.spec.stopStage))].sort((a, b) => a - b);
    let clean = true;
    for (const stage of stages) {
      const members = slots.filter((s) => s.spec.stopStage === stage);
      logger.info({ children: members.map((s) => s.spec.name) }, 'stopping');
      const results = await Promise.all(members.map(stopOne));
      clean &&= results.every(Boolean);
    }
    return clean;
  };

  for (const slot of slots) launch(slot);

  return {
    stop() {
      stopping ??= stopAll();
      return stopping;
    },
    isStopping: () => stopping !== undefined,
  };
}
