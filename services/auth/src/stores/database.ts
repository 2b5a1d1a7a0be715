/**
 * The auth database seen through Kysely: table shapes, opening SQLite (better-sqlite3, the
 * embedded default) or PostgreSQL (`pg` Pool, for several auth replicas), and recognising a
 * unique violation. Everything else is one query code path for both dialects.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import { UniqueViolationError } from './store.js';

export interface ProjectsTable {
  id: string;
  slug: string;
  name: string;
  created_at: number;
}

export interface EndpointsTable {
  id: string;
  project_id: string;
  slug: string;
  tier: string;
  model: string;
  hardware_pool: string;
  context_window: number;
  active: number;
  created_at: number;
}

export interface ApiKeysTable {
  id: string;
  project_id: string;
  name: string;
  prefix: string;
  key_hash: string;
  /** Scope names joined by ',' in canonical order, e.g. 'inference,management'. */
  scopes: string;
  endpoint_id: string | null;
  expires_at: number | null;
  revoked_at: number | null;
  rotated_from_key_id: string | null;
  grace_expires_at: number | null;
  created_at: number;
  last_used_at: number | null;
}

export interface AuthDatabase {
  projects: ProjectsTable;
  endpoints: EndpointsTable;
  api_keys: ApiKeysTable;
}

export type StoreLocation =
  | { dialect: 'sqlite'; path: string }
  | { dialect: 'postgres'; url: string; schema?: string | undefined; poolSize?: number | undefined };

export function openSqlite(file: string): Kysely<AuthDatabase> {
  if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const database = new Database(file);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('busy_timeout = 5000');
  database.pragma('foreign_keys = ON');
  return new Kysely<AuthDatabase>({ dialect: new SqliteDialect({ database }) });
}

const PG_INT8_OID = 20;

export function openPostgres(
  location: Extract<StoreLocation, { dialect: 'postgres' }>,
  logger: Logger,
): Kysely<AuthDatabase> {
  const schema = location.schema ?? 'public';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error('invalid PostgreSQL schema name');
  const pool = new pg.Pool({
    connectionString: location.url,
    max: location.poolSize ?? 10,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    // Every connection resolves unqualified table names in our schema.
    options: `-c search_path=${schema}`,
    // Times are bigint epoch ms: well inside Number's exact range. Per pool, not global.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === PG_INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', (err) => logger.warn({ err }, 'idle PostgreSQL connection failed'));
  return new Kysely<AuthDatabase>({ dialect: new PostgresDialect({ pool }) });
}

function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** Runs a write; a unique-constraint failure of either dialect becomes UniqueViolationError. */
export async function guardUnique<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (isUniqueViolation(err)) throw new UniqueViolationError(err);
    throw err;
  }
}
