/**
 * What the parts of bench/llama.ts share, built once by its entry: the repository root and the
 * child process registry (BenchHost), the flags, the time budget, the log and the cleanups (stop
 * a platform, remove a temp directory) that run at the end, on Ctrl-C or on failure.
 */
import type { BenchHost } from '../lib/targets.js';
import type { LlamaFlags } from './flags.js';

/** Cleanup actions, run newest first; each runs at most once. */
export class Cleanups {
  private list: Array<() => Promise<void>> = [];

  add(fn: () => Promise<void>): void {
    this.list.push(fn);
  }

  /** Forgets an action (its owner has run it already). */
  remove(fn: () => Promise<void>): void {
    this.list = this.list.filter((c) => c !== fn);
  }

  /** Runs every action, newest first; errors are ignored (best effort). */
  async runAll(): Promise<void> {
    const list = this.list.reverse();
    this.list = [];
    for (const c of list) await c().catch(() => undefined);
  }
}

export interface LlamaContext extends BenchHost {
  flags: LlamaFlags;
  /** Past this time (Date.now()) nothing new starts: the rest is kept for cleanup and the report. */
  softDeadline: number;
  cleanups: Cleanups;
  log(msg: string): void;
}
