/**
 * Quota decision benchmark: latency (p50/p99) and decisions/s for the memory and Redis stores,
 * called in-process and over gRPC. Run: `node --import tsx bench/quota.ts` (`--quick`: a smoke run
 * with 1/100 of the calls, only to check that it runs end to end).
 * (BENCH_REDIS_URL, default redis://127.0.0.1:6379; keys under a random prefix, deleted after).
 * Workload: cpu_standard limits (60 req/min, 50,000 tokens/min), 300 keys round-robin,
 * 500-token estimates, so a share of the decisions are denials; a third of the admitted are
 * settled (inside the measured call). Bounded to < 60 s (later scenarios skipped past 50 s).
 * Percentiles are nearest-rank (bench/lib/stats.ts).
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { QuotaServiceDefinition } from '../gen/xerotier/quota/v1/quota_service.js';
import { createAppClient, createGrpcChannel } from '../lib/grpc/client.js';
import { createLogger } from '../lib/logging/logger.js';
import { startQuotaService } from '../services/quota/src/start.js';
import { manualClock } from '../services/quota/src/clock.js';
import { loadQuotaConfig } from '../services/quota/src/config.js';
import { createMemoryStore } from '../services/quota/src/stores/memory.js';
import { createRedisStore } from '../services/quota/src/stores/redis.js';
import { WINDOW_MS, type LimitPolicy, type QuotaStore } from '../services/quota/src/stores/store.js';
import { percentile } from './lib/stats.js';

const { values: flags } = parseArgs({ options: { quick: { type: 'boolean', default: false } }, allowPositionals: false });
/** --quick: 1/100 of the calls per scenario (at least 100), only to check that it runs end to end. */
const scaled = (n: number): number => (flags.quick ? Math.max(100, Math.round(n / 100)) : n);
const REDIS_URL = process.env['BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const prefix = `xqbench:${randomBytes(4).toString('hex')}:`;
const policy: LimitPolicy = { requests: 60, tokens: 50_000, windowMs: WINDOW_MS };
const KEYS = 300;
const startedAt = performance.now();
const BUDGET_MS = 50_000;

interface Row {
  scenario: string;
  calls: number;
  inFlight: number;
  p50: number;
  p99: number;
  perSecond: number;
  allowed: number;
}
const rows: Row[] = [];

/** Runs `calls` operations with `inFlight` workers; records each call's latency. */
async function measure(
  scenario: string,
  calls: number,
  inFlight: number,
  op: (i: number) => Promise<boolean>,
): Promise<void> {
  if (performance.now() - startedAt > BUDGET_MS) {
    console.log(`(skipped ${scenario}: time budget spent)`);
    return;
  }
  const lat = new Float64Array(calls);
  let next = 0;
  let allowed = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      for (let i = next++; i < calls; i = next++) {
        const s = performance.now();
        if (await op(i)) allowed++;
        lat[i] = performance.now() - s;
      }
    }),
  );
  const elapsed = performance.now() - t0;
  rows.push({
    scenario,
    calls,
    inFlight,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    perSecond: (calls / elapsed) * 1000,
    allowed,
  });
}

/** A latency cell: µs below 1 ms. */
const latency = (ms: number): string => (ms < 1 ? `${(ms * 1000).toFixed(1)} µs` : `${ms.toFixed(2)} ms`);

async function storeBench(name: string, store: QuotaStore, calls: number, inFlight: number, tag: string): Promise<void> {
  // 1 ms of fake time per call: windows roll over during long runs, as in production.
  const clock = manualClock(Date.now());
  await measure(`${name} store, in-process`, calls, inFlight, async (i) => {
    clock.advance(1);
    const scope = `bench${tag}:${i % KEYS}`;
    const r = await store.reserve(scope, { requestId: `r${i}`, tokens: 500 }, policy, clock());
    if (r.allowed && i % 3 === 0) await store.settle(scope, { requestId: `r${i}`, tokens: 200 }, policy, clock());
    return r.allowed;
  });
}

async function grpcBench(name: string, env: Record<string, string>, calls: number, inFlight: number, tag: string): Promise<void> {
  const config = loadQuotaConfig({ QUOTA_PORT: '0', LOG_LEVEL: 'silent', ...env });
  const server = await startQuotaService(config, { logger: createLogger('quota-bench', 'silent') });
  const channel = createGrpcChannel(`127.0.0.1:${server.port}`);
  const client = createAppClient(QuotaServiceDefinition, channel, { address: `127.0.0.1:${server.port}`, target: 'quota' });
  try {
    await client.getLimits({ keyId: 'warmup', tier: 'cpu_standard' });
    await measure(`gRPC + ${name} store`, calls, inFlight, async (i) => {
      const keyId = `bench${tag}:${i % (KEYS / 3)}`; // fewer keys: real clock, so some are refused
      const r = await client.reserve({ requestId: `r${i}`, keyId, tier: 'cpu_standard', tokenCount: 500 });
      if (r.decision === 1 && i % 3 === 0) await client.settle({ requestId: `r${i}`, keyId, tier: 'cpu_standard', tokenCount: 200 });
      return r.decision === 1;
    });
    if (server.stats().storeErrors > 0) console.log(`note: ${name} over gRPC had ${server.stats().storeErrors} store errors (decided per the failure policy)`);
  } finally {
    channel.close();
    await server.stop();
  }
}

async function main(): Promise<void> {
  const memory = createMemoryStore();
  await storeBench('memory', memory, scaled(20_000), 1, 'w'); // warm-up (JIT)
  rows.length = 0;
  await storeBench('memory', memory, scaled(200_000), 1, 'm');
  await memory.close();

  const redisStore = createRedisStore(REDIS_URL, { prefix, commandTimeoutMs: 1_000 });
  if (!(await redisStore.waitReady(3_000))) throw new Error(`no Redis at ${REDIS_URL}`);
  try {
    await storeBench('redis', redisStore, scaled(3_000), 1, 'r1');
    await storeBench('redis', redisStore, scaled(30_000), 64, 'r64');
  } finally {
    await redisStore.close();
  }

  await grpcBench('memory', {}, scaled(2_000), 1, 'gm1');
  await grpcBench('memory', {}, scaled(10_000), 64, 'gm64');
  const redisEnv = { QUOTA_REDIS_URL: REDIS_URL, QUOTA_REDIS_PREFIX: prefix, QUOTA_REDIS_TIMEOUT_MS: '1000' };
  await grpcBench('redis', redisEnv, scaled(2_000), 1, 'gr1');
  await grpcBench('redis', redisEnv, scaled(10_000), 64, 'gr64');

  console.log('\nquota decision latency and throughput (Reserve; 1/3 of admitted also Settle, counted in latency)\n');
  const header = ['scenario', 'calls', 'in flight', 'p50', 'p99', 'decisions/s', 'allowed'];
  const table = rows.map((r) => [
    r.scenario,
    String(r.calls),
    String(r.inFlight),
    latency(r.p50),
    latency(r.p99),
    Math.round(r.perSecond).toLocaleString('en-US'),
    `${((r.allowed / r.calls) * 100).toFixed(0)}%`,
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...table.map((row) => row[c]!.length)));
  const line = (cells: string[]): string => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of table) console.log(line(row));
  console.log(`\ntotal ${((performance.now() - startedAt) / 1000).toFixed(1)} s; node ${process.version}`);
}

try {
  await main();
} finally {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [nextCursor, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = nextCursor;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } catch {
    // keys expire within a minute anyway
  } finally {
    redis.disconnect();
  }
}
