/**
 * Runs what `npm start` runs (scripts/build.mjs, then the compiled `dist/scripts/start.js`, whose
 * children are `node dist/...js`) as a user's terminal would: the supervisor in a
 * process group of its own, so `interrupt()` sends SIGINT to that whole group like Ctrl-C does.
 * Every port is free and every file lives in a temporary directory; the model is a missing local
 * file with downloads off, so the worker serves the generated tiny model (or the simulator when
 * asked for).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../helpers/child-worker.js';

export const root = path.join(import.meta.dirname, '..', '..');

export const ENTRIES = {
  gateway: 'gateway/src/main.ts',
  auth: 'services/auth/src/main.ts',
  quota: 'services/quota/src/main.ts',
  inference: 'services/inference/src/main.ts',
  ledger: 'services/ledger/src/main.ts',
} as const;
export type ProcessName = keyof typeof ENTRIES;

export interface StartedScript {
  supervisor: ChildProcess;
  ports: Record<ProcessName, number>;
  metricsPorts: Record<ProcessName, number>;
  dir: string;
  keyFile: string;
  output(): string;
  key(): string;
  /** Pid of the supervisor's child running `name`, found in the process table. */
  childPid(name: ProcessName): number | undefined;
  /** Ctrl-C as a terminal sends it: SIGINT to the supervisor's process group. Resolves with the exit code. */
  interrupt(timeoutMs?: number): Promise<number | null | 'timeout'>;
  /** Kills whatever is left (for `finally`). */
  cleanup(): void;
}

function childrenOf(pid: number): Array<{ pid: number; args: string }> {
  try {
    return execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map((line) => /^\s*(\d+)\s+(.*)$/.exec(line))
      .flatMap((m) => (m ? [{ pid: Number(m[1]), args: m[2]! }] : []));
  } catch {
    return []; // ps exits 1 when there is no such process
  }
}

export async function startScript(env: Record<string, string> = {}, readyTimeoutMs = 180_000): Promise<StartedScript> {
  const dir = mkdtempSync(path.join(tmpdir(), 'xero-start-'));
  const all = await Promise.all(Array.from({ length: 11 }, () => freePort()));
  const [gateway, auth, quota, inference, mGateway, mAuth, mQuota, mInference, ledger, mLedger, gatewayGrpc] = all as number[] as [
    number, number, number, number, number, number, number, number, number, number, number,
  ];
  const keyFile = path.join(dir, 'demo-api-key');
  // `npm start` = build dist/ when stale, then run the compiled supervisor.
  execFileSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { cwd: root, stdio: 'ignore' });
  const supervisor = spawn(process.execPath, [path.join(root, 'dist/scripts/start.js')], {
    cwd: root,
    detached: true,
    env: {
      ...process.env,
      GATEWAY_PORT: String(gateway),
      AUTH_PORT: String(auth),
      QUOTA_PORT: String(quota),
      INFERENCE_PORT: String(inference),
      GATEWAY_METRICS_PORT: String(mGateway),
      AUTH_METRICS_PORT: String(mAuth),
      QUOTA_METRICS_PORT: String(mQuota),
      INFERENCE_METRICS_PORT: String(mInference),
      LEDGER_PORT: String(ledger),
      LEDGER_METRICS_PORT: String(mLedger),
      LEDGER_SQLITE_PATH: path.join(dir, 'ledger.sqlite'),
      GATEWAY_GRPC_PORT: String(gatewayGrpc),
      AUTH_SQLITE_PATH: path.join(dir, 'auth.sqlite'),
      AUTH_DEMO_KEY_FILE: keyFile,
      LLAMA_MODEL: path.join(dir, 'missing.gguf'),
      LLAMA_MODELS_DIR: path.join(dir, 'models'),
      LLAMA_ALLOW_DOWNLOAD: 'false',
      LLAMA_THREADS: '1',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  supervisor.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  supervisor.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => supervisor.once('exit', (code) => resolve(code)));
  const pid = supervisor.pid!;
  const known = new Set<number>();
  const childPid = (name: ProcessName): number | undefined => {
    const compiled = `dist/${ENTRIES[name].replace(/\.ts$/, '.js')}`;
    const found = childrenOf(pid).find((c) => c.args.includes(compiled))?.pid;
    if (found !== undefined) known.add(found);
    return found;
  };
  const started: StartedScript = {
    supervisor,
    ports: { gateway, auth, quota, inference, ledger },
    metricsPorts: { gateway: mGateway, auth: mAuth, quota: mQuota, inference: mInference, ledger: mLedger },
    dir,
    keyFile,
    output: () => out,
    key: () => readFileSync(keyFile, 'utf8').trim(),
    childPid,
    async interrupt(timeoutMs = 60_000) {
      process.kill(-pid, 'SIGINT');
      return Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs))]);
    },
    cleanup() {
      for (const name of Object.keys(ENTRIES) as ProcessName[]) childPid(name);
      for (const p of [pid, ...known]) {
        try {
          process.kill(-p, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
  };
  const until = Date.now() + readyTimeoutMs;
  while (!out.includes('Ctrl-C stops everything')) {
    if (Date.now() > until || supervisor.exitCode !== null) {
      started.cleanup();
      throw new Error(`platform did not come up:\n${out.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return started;
}
