/**
 * Test support for the ledger: a store of either kind on a throwaway database (PostgreSQL gets a
 * fresh schema per call, dropped on cleanup; an unreachable server fails the test, never skips
 * it), and record builders.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createLogger } from '../../lib/logging/logger.js';
import { openLedgerStore } from '../../services/ledger/src/stores/kysely-store.js';
import type { LedgerRow, LedgerStore } from '../../services/ledger/src/stores/store.js';

export const STORE_KINDS = ['sqlite', 'postgres'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

/** PostgreSQL for tests (trust auth); override with LEDGER_TEST_DATABASE_URL. */
export const PG_TEST_URL = process.env['LEDGER_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

export async function withPgClient<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_TEST_URL, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

export async function createPgSchema(prefix = 'ledger_test'): Promise<{ schema: string; drop(): Promise<void> }> {
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  await withPgClient((c) => c.query(`CREATE SCHEMA ${schema}`));
  return { schema, drop: () => withPgClient((c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)).then(() => undefined) };
}

export interface TestLedgerStore {
  store: LedgerStore;
  /** Env for startLedgerService on the same database. */
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

export async function openTestLedgerStore(kind: StoreKind): Promise<TestLedgerStore> {
  const logger = createLogger('ledger', 'silent');
  if (kind === 'sqlite') {
    const store = await openLedgerStore({ dialect: 'sqlite', path: ':memory:' }, logger);
    return { store, env: { LEDGER_SQLITE_PATH: ':memory:' }, cleanup: () => store.close() };
  }
  const pgSchema = await createPgSchema();
  try {
    const store = await openLedgerStore({ dialect: 'postgres', url: PG_TEST_URL, schema: pgSchema.schema, poolSize: 4 }, logger);
    return {
      store,
      env: { LEDGER_DATABASE_URL: PG_TEST_URL, LEDGER_DATABASE_SCHEMA: pgSchema.schema },
      async cleanup() {
        await store.close();
        await pgSchema.drop();
      },
    };
  } catch (err) {
    await pgSchema.drop();
    throw err;
  }
}

export function row(requestId: string, overrides: Partial<LedgerRow> = {}): LedgerRow {
  return {
    requestId,
    projectId: 'proj_a',
    endpoint: 'chat',
    keyId: 'key_1',
    model: 'm1',
    workerId: 'cpu-1',
    hardwarePool: 'cpu',
    tier: 'cpu_standard',
    httpStatus: 200,
    errorCode: '',
    promptTokens: 10,
    completionTokens: 5,
    cachedTokens: 0,
    ttftMs: 12,
    durationMs: 40,
    startedAt: Date.UTC(2026, 0, 1, 10, 30),
    cancelled: false,
    ...overrides,
  };
}
