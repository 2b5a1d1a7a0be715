/**
 * What one `npm run bench` run has measured so far: per target and metric one value per round,
 * failures with the first error seen, crashes of our processes, the memory and profile results.
 * Created once by bench/run.ts and passed to the phases (which fill it) and the report (which
 * reads it).
 */
import type { ProfileSummary } from '../lib/cpuprofile.js';
import { median } from '../lib/stats.js';
import type { Target, TargetKey } from '../lib/targets.js';

/** The report's column order. */
export const TARGET_KEYS: readonly TargetKey[] = ['mock', 'ours', 'portkey'];

export interface MemoryResult {
  label: string;
  key: TargetKey;
  held: number;
  failed: number;
  /** Front process RSS in KiB: idle, with the streams held, after release. */
  idle: number;
  loaded: number;
  after: number;
  /** ours: every process on the path (gateway, auth, quota, worker). */
  pathIdle?: number;
  pathLoaded?: number;
  breakdown?: string;
}

export interface Crash {
  process: string;
  exit: string;
  during: string;
  tail: string;
}

export interface ProfileOutcome {
  load: string;
  /** One analysed profile per process (gateway, inference, quota). */
  processes: Array<{ name: string; file: string; summary: ProfileSummary }>;
  /** Analysed window, ms after the gateway was spawned. */
  window: [number, number];
}

export class RunResults {
  private readonly values = new Map<TargetKey, Map<string, number[]>>(TARGET_KEYS.map((k) => [k, new Map()]));
  private readonly failedPerTarget = new Map<TargetKey, number>(TARGET_KEYS.map((k) => [k, 0]));
  /** Failures per "target — measurement", with the first error seen. */
  readonly failureLog = new Map<string, { n: number; error: string | undefined }>();
  /** Processes of ours that died during the main phase (the stack is restarted and the run goes on). */
  readonly crashes: Crash[] = [];
  /** Times our gateway lost its gRPC connection to the worker during the main phase. */
  workerLost = 0;
  /** Phases that threw (later phases still run; earlier figures are kept). */
  readonly phaseErrors: string[] = [];
  /** 1-minute load average when the run started and ended (other work on the host shows here). */
  readonly loadAverages: number[] = [];
  memory: MemoryResult[] = [];
  profile: ProfileOutcome | undefined;

  record(key: TargetKey, metric: string, value: number): void {
    const m = this.values.get(key);
    if (!m) return;
    const list = m.get(metric) ?? [];
    list.push(value);
    m.set(metric, list);
  }

  fail(target: Target, n: number, what: string, error?: string): void {
    if (n <= 0) return;
    this.failedPerTarget.set(target.key, (this.failedPerTarget.get(target.key) ?? 0) + n);
    const key = `${target.label} — ${what}`;
    const entry = this.failureLog.get(key) ?? { n: 0, error };
    entry.n += n;
    this.failureLog.set(key, entry);
  }

  /** One value per round, in round order. */
  rounds(key: TargetKey, metric: string): number[] {
    return this.values.get(key)?.get(metric) ?? [];
  }

  /** The median of the rounds. */
  med(key: TargetKey, metric: string): number {
    return median(this.rounds(key, metric));
  }

  failed(key: TargetKey): number {
    return this.failedPerTarget.get(key) ?? 0;
  }

  memoryOf(key: TargetKey): MemoryResult | undefined {
    return this.memory.find((m) => m.key === key);
  }
}
