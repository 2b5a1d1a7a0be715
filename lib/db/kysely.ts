/**
 * Opening a Kysely database on either dialect a service supports: SQLite (better-sqlite3, the
 * embedded default, a file created on first start) or PostgreSQL (a `pg` pool, for several
 * replicas, with every connection's search_path set to the service's schema). The auth store and
 * the usage ledger open their databases here; each keeps its own tables and migrations.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';

export type StoreLocation =
  | { dialect: 'sqlite'; path: string }
  | { dialect: 'postgres'; url: string; schema?: string | undefined; poolSize?: number | undefined };

const PG_INT8_OID = 20;
const PG_NUMERIC_OID = 1700;

/** The better-sqlite3 handle itself (WAL, synchronous=NORMAL), for a store that also prepares its own statements. */
export function openSqliteDatabase(file: string, options: { foreignKeys?: boolean } = {}): Database.Database {
  if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const database = new Database(file);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('busy_timeout = 5000');
  if (options.foreignKeys) database.pragma('foreign_keys = ON');
  return database;
}

export function sqliteKysely<DB>(database: Database.Database): Kysely<DB> {
  return new Kysely<DB>({ dialect: new SqliteDialect({ database }) });
}

export function openSqlite<DB>(file: string, options: { foreignKeys?: boolean } = {}): Kysely<DB> {
  return sqliteKysely<DB>(openSqliteDatabase(file, options));
}

export function openPostgres<DB>(location: Extract<StoreLocation, { dialect: 'postgres' }>, logger: Logger): Kysely<DB> {
  const schema = location.schema ?? 'public';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error('invalid PostgreSQL schema name');
  const pool = new pg.Pool({
    connectionString: location.url,
    max: location.poolSize ?? 10,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    // Every connection resolves unqualified table names in our schema.
    options: `-c search_path=${schema}`,
    // bigint columns and sum()/count() results are epoch ms and token counts: well inside
    // Number's exact range. Per pool, not global.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === PG_INT8_OID || oid === PG_NUMERIC_OID
          ? (v: string) => Number(v)
          : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // A connection lost must not crash the process. Every client gets its own 'error' listener
  // for its whole life: pg-pool listens only while a client is idle (and then re-emits on the
  // pool), so a client lent out for a query would otherwise emit an unheard 'error' beside the
  // failed query. One log line per lost connection, the code only (e.g. 57P01 when the server
  // restarts): no stack, no host names. The pool replaces lost clients; the query's own
  // rejection reaches its caller.
  pool.on('connect', (client) =>
    client.on('error', (err: Error & { code?: string }) => logger.warn({ code: err.code ?? 'unknown' }, 'PostgreSQL connection lost')),
  );
  pool.on('error', () => undefined); // an idle client's error, already logged by its own listener
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
}

export function openDatabase<DB>(location: StoreLocation, logger: Logger, options: { foreignKeys?: boolean } = {}): Kysely<DB> {
  return location.dialect === 'sqlite' ? openSqlite<DB>(location.path, options) : openPostgres<DB>(location, logger);
}

/**
 * Opens the database, brings it to the latest schema with the service's own migrations, logs
 * where it is (never the URL: it may hold a password) and returns it; closes it again if the
 * migration fails.
 */
export async function openMigrated<DB>(
  location: StoreLocation,
  logger: Logger,
  options: {
    name: string;
    foreignKeys?: boolean;
    migrate: (db: Kysely<unknown>, schema: string | undefined) => Promise<string[]>;
    /** Already opened on `location` (closed here if the migration fails); opened here when absent. */
    db?: Kysely<DB>;
  },
): Promise<Kysely<DB>> {
  const db = options.db ?? openDatabase<DB>(location, logger, { foreignKeys: options.foreignKeys ?? false });
  try {
    const applied = await options.migrate(db as Kysely<unknown>, location.dialect === 'postgres' ? (location.schema ?? 'public') : undefined);
    if (applied.length > 0) logger.info({ applied }, `${options.name} database migrated`);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  logger.info(
    location.dialect === 'sqlite' ? { dialect: 'sqlite', path: location.path } : { dialect: 'postgres', schema: location.schema ?? 'public' },
    `${options.name} store open`,
  );
  return db;
}

/** One round trip to the database (`SELECT 1`): for health checks. */
export async function pingDatabase(db: Kysely<unknown>): Promise<void> {
  await sql`SELECT 1`.execute(db);
}
