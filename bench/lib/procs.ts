/**
 * Child processes for the benchmark: spawn with captured output (ChildProcesses), stop with a
 * bounded wait, and a last-resort SIGKILL of every child still alive when this process exits
 * (normal end, error, Ctrl-C). Plus /proc readers (RSS, CPU time) and small bounded polling helpers.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Proc {
  name: string;
  pid: number;
  child: ChildProcess;
  /** The last few KB of stdout + stderr (for error messages). */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string | null>;
  alive(): boolean;
}

/** Output kept per child (BENCH_OUTPUT_KB raises it when debugging a failing run). */
const OUTPUT_KEEP = Number(process.env['BENCH_OUTPUT_KB'] ?? 256) * 1024;

/**
 * The children of one benchmark run. Created once by the benchmark's entry; on creation it
 * installs the last-resort hook that SIGKILLs every child still alive when this process exits.
 */
export class ChildProcesses {
  private readonly live = new Set<ChildProcess>();

  constructor() {
    // 'exit' handlers must be synchronous: SIGKILL whatever is left, by pid (only our own children).
    process.on('exit', () => this.killAll());
  }

  /** Spawns `node <args>` with stdout and stderr captured (the tail is kept; lines go to onLine). */
  start(name: string, args: string[], options: { env: NodeJS.ProcessEnv; cwd: string; onLine?: (line: string) => void }): Proc {
    const child = spawn(process.execPath, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid === undefined) throw new Error(`${name}: spawn failed`);
    this.live.add(child);
    let tail = '';
    let partial = '';
    const keep = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      tail = (tail + text).slice(-OUTPUT_KEEP);
      if (options.onLine) {
        const lines = (partial + text).split('\n');
        partial = (lines.pop() ?? '').slice(-OUTPUT_KEEP);
        for (const line of lines) options.onLine(line);
      }
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const exited = new Promise<number | string | null>((resolve) => {
      child.once('exit', (code, signal) => {
        this.live.delete(child);
        resolve(signal ?? code);
      });
    });
    return {
      name,
      pid: child.pid,
      child,
      output: () => tail,
      exited,
      alive: () => child.exitCode === null && child.signalCode === null,
    };
  }

  private killAll(): void {
    for (const c of this.live) {
      if (c.exitCode === null && c.signalCode === null) {
        try {
          c.kill('SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
  }
}

/** SIGTERM (or `signal`), wait up to timeoutMs, then SIGKILL and wait a little more. */
export async function stopProcess(p: Proc, timeoutMs = 5_000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!p.alive()) return;
  p.child.kill(signal);
  const done = await Promise.race([p.exited.then(() => true), sleep(timeoutMs).then(() => false)]);
  if (!done && p.alive()) {
    p.child.kill('SIGKILL');
    await Promise.race([p.exited, sleep(2_000)]);
  }
}

/** An ephemeral port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Thrown from a waitUntil check to stop waiting at once (other errors count as "not yet"). */
export class WaitAbort extends Error {}

/** Polls `check` every intervalMs until it returns true; throws after timeoutMs. */
export async function waitUntil(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
  intervalMs = 100,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  const maxPolls = Math.ceil(timeoutMs / intervalMs) + 1;
  for (let i = 0; i < maxPolls; i++) {
    let ok = false;
    try {
      ok = await check();
    } catch (err) {
      if (err instanceof WaitAbort) throw err;
    }
    if (ok) return;
    if (Date.now() > until) break;
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Resident set size in KiB (VmRSS of /proc/<pid>/status), or NaN when unreadable. */
export function rssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Clock ticks per second of /proc/<pid>/stat times (read once; 100 where getconf is missing). */
const CLOCK_TICKS = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU time of a process in ms (/proc/<pid>/stat utime + stime), NaN when unreadable. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return ((utime + stime) * 1000) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** Parent pid of a process (/proc/<pid>/stat field 4), undefined when unreadable. */
function parentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** The process and its living descendants (a gateway with GATEWAY_PROCESSES > 1: primary + processes). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const child = Number(name);
    const parent = parentPid(child);
    if (parent !== undefined) children.set(parent, [...(children.get(parent) ?? []), child]);
  }
  const tree: number[] = [];
  const visit = (p: number): void => {
    tree.push(p);
    for (const c of children.get(p) ?? []) visit(c);
  };
  visit(pid);
  return tree;
}

/** CPU ms of a process and its living descendants (cpuMs summed over processTree). */
export function treeCpuMs(pid: number): number {
  // A process that ended between the listing and the read counts 0.
  return processTree(pid).reduce((sum, p) => sum + (cpuMs(p) || 0), 0);
}
