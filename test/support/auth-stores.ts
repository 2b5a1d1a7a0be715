/**
 * Test support: opens each store kind on a throwaway database so one suite runs
 * against both. PostgreSQL gets a fresh schema per call (dropped on cleanup), so parallel runs
 * never collide. An unreachable PostgreSQL fails the test — it is never skipped silently.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { createLogger } from '../../lib/logging/logger.js';
import { openAuthStore, type StoreLocation } from '../../services/auth/src/stores/kysely-store.js';
import type { AuthStore } from '../../services/auth/src/stores/store.js';

export const STORE_KINDS = ['sqlite', 'postgres'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

/** PostgreSQL for tests (trust auth); override with AUTH_TEST_DATABASE_URL. */
export const PG_TEST_URL = process.env['AUTH_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface PgTestSchema {
  url: string;
  schema: string;
  drop(): Promise<void>;
}

export async function createPgTestSchema(): Promise<PgTestSchema> {
  const schema = `auth_test_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: PG_TEST_URL, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(
      `PostgreSQL tests need a server at ${PG_TEST_URL.replace(/\/\/[^@]*@/, '//…@')} (set AUTH_TEST_DATABASE_URL): ${String(err)}`,
      { cause: err },
    );
  }
  try {
    await client.query(`CREATE SCHEMA ${schema}`);
  } finally {
    await client.end();
  }
  return {
    url: PG_TEST_URL,
    schema,
    async drop() {
      const c = new pg.Client({ connectionString: PG_TEST_URL });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}

export interface TestStore {
  kind: StoreKind;
  store: AuthStore;
  location: StoreLocation;
  /** Env for startAuthService pointing at the same database. */
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

/** Opens a migrated store of the given kind on a fresh database. */
export async function openTestStore(kind: StoreKind, logger: Logger = silentLogger()): Promise<TestStore> {
  if (kind === 'sqlite') {
    const location: StoreLocation = { dialect: 'sqlite', path: ':memory:' };
    const store = await openAuthStore(location, logger);
    return { kind, store, location, env: { AUTH_SQLITE_PATH: ':memory:' }, cleanup: () => store.close() };
  }
  const pgSchema = await createPgTestSchema();
  const location: StoreLocation = { dialect: 'postgres', url: pgSchema.url, schema: pgSchema.schema, poolSize: 4 };
  try {
    const store = await openAuthStore(location, logger);
    return {
      kind,
      store,
      location,
      env: { AUTH_DATABASE_URL: pgSchema.url, AUTH_DATABASE_SCHEMA: pgSchema.schema },
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

/** Env (AUTH_DATABASE_URL/…SCHEMA or AUTH_SQLITE_PATH) for a service on a fresh database. */
export async function testDatabaseEnv(kind: StoreKind): Promise<{ env: Record<string, string>; cleanup(): Promise<void> }> {
  if (kind === 'sqlite') return { env: { AUTH_SQLITE_PATH: ':memory:' }, cleanup: () => Promise.resolve() };
  const s = await createPgTestSchema();
  return { env: { AUTH_DATABASE_URL: s.url, AUTH_DATABASE_SCHEMA: s.schema }, cleanup: () => s.drop() };
}

/** A store whose every method call is counted (e.g. to prove malformed keys cause no lookup). */
export function countingStore(store: AuthStore): { store: AuthStore; calls: Map<string, number>; total(): number } {
  const calls = new Map<string, number>();
  const counted = new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      return (...args: unknown[]) => {
        calls.set(prop, (calls.get(prop) ?? 0) + 1);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: counted, calls, total: () => [...calls.values()].reduce((a, b) => a + b, 0) };
}

export function silentLogger(): Logger {
  return createLogger('auth', 'silent');
}

/** What a leaked key would look like in logs; display prefixes (6 secret chars) don't match. */
export const KEY_MATERIAL = /xero_[a-z0-9-]+_[A-Za-z0-9]{16,}/g;
