/**
 * What every phase of `npm run bench` gets from bench/run.ts: the repository root and the child
 * process registry (BenchHost), paths, flags, the results to fill, the log, and the register of
 * running targets (so a failing phase, Ctrl-C or the end of the run stops whatever is still up).
 */
import type { BenchHost, Target } from '../lib/targets.js';
import type { GatewayFlags } from './flags.js';
import type { RunResults } from './results.js';

/** Targets started and not yet stopped, newest last. */
export class RunningTargets {
  private readonly list: Target[] = [];

  started(t: Target): Target {
    this.list.push(t);
    return t;
  }

  async stop(t: Target): Promise<void> {
    const i = this.list.indexOf(t);
    if (i >= 0) this.list.splice(i, 1);
    await t.stop();
  }

  /** Stops everything still running, newest first; errors are ignored (best effort). */
  async stopAll(): Promise<void> {
    for (const t of this.list.splice(0).reverse()) await t.stop().catch(() => undefined);
  }
}

export interface PhaseContext extends BenchHost {
  /** Temporary directory of this run (removed at the end). */
  workDir: string;
  /** The tier table that never throttles (bench/lib/targets.ts writeBenchTiers). */
  tiersFile: string;
  flags: GatewayFlags;
  results: RunResults;
  running: RunningTargets;
  log(msg: string): void;
}

/** Our worker's engine for the gateway comparison: the `openai` engine in front of the mock. */
export function openaiEngine(url: string): Record<string, string> {
  return { INFERENCE_ENGINE: 'openai', OPENAI_UPSTREAM_URL: url, OPENAI_UPSTREAM_MODEL: 'mock' };
}
