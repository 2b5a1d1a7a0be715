/**
 * Authenticate latency over real gRPC, SQLite vs PostgreSQL.
 *
 *   node --import tsx bench/auth.ts [--calls 3000] [--concurrency 16] [--stores sqlite,postgres]
 *
 * The auth service runs as its own process (services/auth/src/main.ts, port 0, fresh database:
 * a temp SQLite file / a throwaway PostgreSQL schema) so client and server don't share an event
 * loop. Workloads per store: sequential valid-key calls, concurrent valid-key calls, and
 * sequential malformed keys (refused by the offline parser, no database). Percentiles are
 * nearest-rank (bench/lib/stats.ts). Prints figures only.
 * Smoke run (only checks that it runs end to end): --calls 100 --stores sqlite
 */
import { cachedAuthenticate } from '../gateway/src/auth-cache.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { AuthServiceDefinition, Scope } from '../gen/xerotier/auth/v1/auth_service.js';
import { callOptions, createAppClient, createGrpcChannel } from '../lib/grpc/client.js';
import { createPgTestSchema, type PgTestSchema } from '../test/support/auth-stores.js';
import { percentile } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '3000' },
    concurrency: { type: 'string', default: '16' },
    stores: { type: 'string', default: 'sqlite,postgres' },
  },
});
const CALLS = Number(values.calls);
const CONCURRENCY = Number(values.concurrency);
const STORES = values.stores.split(',').filter((s): s is 'sqlite' | 'postgres' => s === 'sqlite' || s === 'postgres');
const ROOT = path.join(import.meta.dirname, '..');

interface Figures {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  rps: number;
}

async function measure(total: number, concurrency: number, call: () => Promise<unknown>): Promise<Figures> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next += 1;
        const t0 = performance.now();
        await call();
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return {
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
    max: percentile(latencies, 100),
    rps: total / elapsed,
  };
}

async function startAuthProcess(env: Record<string, string>): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'services/auth/src/main.ts')], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('auth did not start within 20 s')), 20_000);
    child.once('exit', (code) => reject(new Error(`auth exited with ${code}`)));
    lines.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === 'auth service listening' && entry.port) {
          clearTimeout(timer);
          resolve(entry.port);
        }
      } catch {
        /* not JSON */
      }
    });
  });
  return { child, port };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** A latency column (ms). */
const col = (ms: number): string => ms.toFixed(2).padStart(7);
const rows: string[] = [];

for (const store of STORES) {
  const dir = mkdtempSync(path.join(tmpdir(), 'xero-bench-auth-'));
  let pg: PgTestSchema | undefined;
  let proc: { child: ChildProcess; port: number } | undefined;
  try {
    const env: Record<string, string> = {
      AUTH_PORT: '0',
      AUTH_KEY_PEPPER: 'bench-pepper-0123456789abcdef',
      AUTH_DEMO_KEY_FILE: path.join(dir, 'demo-api-key'),
    };
    if (store === 'sqlite') {
      env['AUTH_SQLITE_PATH'] = path.join(dir, 'auth.sqlite');
    } else {
      pg = await createPgTestSchema();
      env['AUTH_DATABASE_URL'] = pg.url;
      env['AUTH_DATABASE_SCHEMA'] = pg.schema;
    }
    proc = await startAuthProcess(env);
    const key = readFileSync(env['AUTH_DEMO_KEY_FILE'] ?? '', 'utf8').trim();
    const address = `127.0.0.1:${proc.port}`;
    const channel = createGrpcChannel(address);
    const client = createAppClient(AuthServiceDefinition, channel, { address, target: 'auth' });
    const valid = () =>
      client.authenticate(
        { apiKey: key, project: 'demo', endpoint: 'chat', requiredScope: Scope.SCOPE_INFERENCE },
        callOptions('bench'),
      );
    const malformed = () =>
      client
        .authenticate(
          { apiKey: `${key.slice(0, -1)}!`, project: 'demo', endpoint: 'chat', requiredScope: Scope.SCOPE_INFERENCE },
          callOptions('bench'),
        )
        .catch(() => undefined);
    try {
      await measure(500, 4, valid); // warm-up (JIT, connection, statement caches)
      const sequential = await measure(CALLS, 1, valid);
      const concurrent = await measure(CALLS * 2, CONCURRENCY, valid);
      const refused = await measure(CALLS, 1, malformed);
      // What the gateway pays per request with its auth cache (GATEWAY_AUTH_CACHE_TTL_MS = 5 s):
      // the same gRPC call behind cachedAuthenticate, warm.
      const cached = cachedAuthenticate(
        (input, requestId) =>
          client
            .authenticate({ apiKey: input.apiKey, project: input.project, endpoint: input.endpoint, requiredScope: input.scope }, callOptions(requestId))
            .then((r) => r.principal!),
        { ttlMs: 5000, maxEntries: 1000 },
      );
      const cachedCall = () => cached({ apiKey: key, project: 'demo', endpoint: 'chat', scope: Scope.SCOPE_INFERENCE }, 'bench');
      await cachedCall();
      const withCache = await measure(CALLS, 1, cachedCall);
      for (const [name, f] of [
        ['valid key, sequential', sequential],
        [`valid key, ${CONCURRENCY} in flight`, concurrent],
        ['malformed key, sequential', refused],
        ['valid key, gateway cache hit', withCache],
      ] as const) {
        rows.push(
          `${store.padEnd(9)} ${name.padEnd(26)} ${col(f.p50)} ${col(f.p90)} ${col(f.p99)} ${col(f.max)} ${f.rps.toFixed(0).padStart(8)}`,
        );
      }
    } finally {
      channel.close();
    }
  } finally {
    if (proc) await stopChild(proc.child);
    await pg?.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

process.stdout.write(
  `Authenticate over gRPC (auth in its own process; ${CALLS} sequential / ${CALLS * 2} concurrent calls; ms)\n` +
    `${'store'.padEnd(9)} ${'workload'.padEnd(26)} ${'p50'.padStart(7)} ${'p90'.padStart(7)} ${'p99'.padStart(7)} ${'max'.padStart(7)} ${'calls/s'.padStart(8)}\n` +
    `${rows.join('\n')}\n`,
);
