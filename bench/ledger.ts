/**
 * Ledger benchmark: batched write rate over gRPC (records/s, SQLite and PostgreSQL) and grouped
 * reads over 1,000,000 rows of one project in PostgreSQL. Run: `node --import tsx bench/ledger.ts`
 * (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test; everything lives in a
 * fresh schema that is dropped afterwards). Prints figures; asserts nothing.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { LedgerServiceDefinition, type UsageRecord } from '../gen/xerotier/ledger/v1/ledger_service.js';
import { callOptions, createAppClient, createGrpcChannel } from '../lib/grpc/client.js';
import { createLogger } from '../lib/logging/logger.js';
import { loadLedgerConfig } from '../services/ledger/src/config.js';
import { startLedgerService } from '../services/ledger/src/start.js';
import { openLedgerStore } from '../services/ledger/src/stores/kysely-store.js';
import type { GroupName, LedgerRow } from '../services/ledger/src/stores/store.js';

const PG_URL = process.env['BENCH_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const WRITE_RECORDS = Number(process.env['BENCH_WRITE_RECORDS'] ?? 100_000);
const READ_ROWS = Number(process.env['BENCH_READ_ROWS'] ?? 1_000_000);
const BATCH = 500;
const LOAD_BATCH = 5_000;
const IN_FLIGHT = 2;
const DAY_MS = 86_400_000;
const logger = createLogger('ledger', 'silent');

async function sql(query: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(query);
  } finally {
    await c.end();
  }
}

async function count(query: string): Promise<number> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return Number((await c.query<{ count: string }>(query)).rows[0]?.count ?? 0);
  } finally {
    await c.end();
  }
}

function record(i: number, now: number): UsageRecord {
  return {
    requestId: `req_${randomBytes(12).toString('hex')}`,
    projectId: `proj_${i % 10}`,
    endpoint: `ep${i % 5}`,
    keyId: `key_${i % 50}`,
    model: `model-${i % 3}`,
    workerId: `cpu-${i % 4}`,
    hardwarePool: 'cpu',
    tier: 'cpu_standard',
    httpStatus: i % 20 === 0 ? 429 : 200,
    errorCode: i % 20 === 0 ? 'rate_limit_exceeded' : '',
    promptTokens: 20 + (i % 100),
    completionTokens: 10 + (i % 200),
    cachedTokens: 0,
    timeToFirstTokenMs: 30,
    durationMs: 400,
    startTime: new Date(now - (i % 1000)),
    cancelled: i % 50 === 0,
  };
}

/** WriteRecords batches of 500, two calls in flight, through a started ledger service. */
async function writeRate(label: string, env: Record<string, string>): Promise<void> {
  const ledger = await startLedgerService(loadLedgerConfig({ LEDGER_PORT: '0', LEDGER_RETENTION_DAYS: '0', ...env }), { logger });
  const channel = createGrpcChannel(`127.0.0.1:${ledger.port}`);
  const client = createAppClient(LedgerServiceDefinition, channel, { address: '', target: 'ledger' });
  try {
    const now = Date.now();
    const batches: UsageRecord[][] = [];
    for (let i = 0; i < WRITE_RECORDS; i += BATCH) batches.push(Array.from({ length: BATCH }, (_, j) => record(i + j, now)));
    let next = 0;
    let inserted = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < batches.length) {
          const batch = batches[next++]!;
          const result = await client.writeRecords({ records: batch }, callOptions('bench'));
          inserted += result.inserted;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    // The same batches again: every record is a duplicate and nothing is stored twice.
    const again = await client.writeRecords({ records: batches[0]! }, callOptions('bench'));
    console.log(
      `write ${label}: ${inserted.toLocaleString('en')} records in ${seconds.toFixed(2)} s = ` +
        `${Math.round(inserted / seconds).toLocaleString('en')} records/s (batches of ${BATCH}, ${IN_FLIGHT} in flight); ` +
        `re-sent batch: ${again.inserted} inserted, ${again.duplicates} duplicates`,
    );
  } finally {
    channel.close();
    await ledger.stop();
  }
}

async function readLatency(schema: string): Promise<void> {
  const store = await openLedgerStore({ dialect: 'postgres', url: PG_URL, schema }, logger);
  const now = Date.now();
  const loadStarted = performance.now();
  // 1M rows of one project spread evenly over 30 days, written through the store's own write
  // path (raw rows and the hourly rollup) in batches of LOAD_BATCH.
  for (let g = 1; g <= READ_ROWS; g += LOAD_BATCH) {
    const rows: LedgerRow[] = [];
    for (let i = g; i < g + LOAD_BATCH && i <= READ_ROWS; i++) {
      rows.push({
        requestId: `req_${i}`,
        projectId: 'proj_big',
        endpoint: `ep${i % 5}`,
        keyId: `key_${i % 50}`,
        model: `model-${i % 3}`,
        workerId: `cpu-${i % 4}`,
        hardwarePool: 'cpu',
        tier: 'cpu_standard',
        httpStatus: i % 20 === 0 ? 429 : 200,
        errorCode: i % 20 === 0 ? 'rate_limit_exceeded' : '',
        promptTokens: 20 + (i % 100),
        completionTokens: 10 + (i % 200),
        cachedTokens: 0,
        ttftMs: 30,
        durationMs: 400,
        startedAt: now - Math.floor((i * 30 * DAY_MS) / READ_ROWS),
        cancelled: i % 50 === 0,
      });
    }
    await store.insert(rows);
  }
  await sql(`ANALYZE ${schema}.usage_records; ANALYZE ${schema}.usage_hourly; ANALYZE ${schema}.usage_daily;`);
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  console.log(
    `loaded ${READ_ROWS.toLocaleString('en')} rows (one project, 30 days) through the store in batches of ${LOAD_BATCH.toLocaleString('en')}: ` +
      `${loadSeconds.toFixed(1)} s = ${Math.round(READ_ROWS / loadSeconds).toLocaleString('en')} records/s; ` +
      `rollup rows: ${(await count(`SELECT count(*) FROM ${schema}.usage_hourly`)).toLocaleString('en')} hourly, ` +
      `${(await count(`SELECT count(*) FROM ${schema}.usage_daily`)).toLocaleString('en')} daily`,
  );
  try {
    const cases: Array<[GroupName, number, string]> = [
      ['key', 30 * DAY_MS, 'all 30 days (every row)'],
      ['day', 30 * DAY_MS, 'all 30 days (every row)'],
      ['model', 30 * DAY_MS, 'all 30 days (every row)'],
      ['hour', 30 * DAY_MS, 'all 30 days (every row; hourly rollup only)'],
      ['hour', DAY_MS, 'last 24 h (~33,000 rows)'],
      ['key', DAY_MS, 'last 24 h (~33,000 rows)'],
    ];
    for (const [groupBy, span, what] of cases) {
      const times: number[] = [];
      let buckets = 0;
      for (let i = 0; i < 5; i++) {
        const t = performance.now();
        const page = await store.usage({ projectId: 'proj_big', from: now - span, to: now + 1, limit: 1000, groupBy });
        times.push(performance.now() - t);
        buckets = page.buckets.length;
      }
      times.sort((a, b) => a - b);
      console.log(`read group_by=${groupBy} over ${what}: median ${times[2]!.toFixed(1)} ms, min ${times[0]!.toFixed(1)} ms (${buckets} buckets)`);
    }
    const t = performance.now();
    await store.records({ projectId: 'proj_big', from: now - DAY_MS, to: now + 1, limit: 100 });
    console.log(`read records page (100, last 24 h): ${(performance.now() - t).toFixed(1)} ms`);
    const r = performance.now();
    const deleted = await store.deleteBefore(now - 29 * DAY_MS);
    console.log(`retention: deleted ${deleted.toLocaleString('en')} rows older than 29 days in ${((performance.now() - r) / 1000).toFixed(2)} s`);
  } finally {
    await store.close();
  }
}

const schema = `ledger_bench_${randomBytes(4).toString('hex')}`;
const dir = mkdtempSync(path.join(tmpdir(), 'ledger-bench-'));
await sql(`CREATE SCHEMA ${schema}`);
try {
  await writeRate('SQLite (file)', { LEDGER_SQLITE_PATH: path.join(dir, 'ledger.sqlite') });
  await writeRate('PostgreSQL', { LEDGER_DATABASE_URL: PG_URL, LEDGER_DATABASE_SCHEMA: schema });
  await sql(`TRUNCATE ${schema}.usage_records, ${schema}.usage_hourly, ${schema}.usage_daily`);
  await readLatency(schema);
} finally {
  await sql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  rmSync(dir, { recursive: true, force: true });
}
