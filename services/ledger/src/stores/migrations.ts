/**
 * Versioned ledger migrations, provided in code. Never edit a released migration; add the next.
 * Portable column types (SQLite and PostgreSQL): times `bigint` epoch ms, booleans `integer` 0/1.
 * Kysely's bookkeeping tables get ledger-specific names so the ledger can share a database and
 * schema with the auth service.
 */
import { sql, type Kysely } from 'kysely';
import { Migrator, type Migration } from 'kysely/migration';

/** As of 0002 (a migration never follows later code): the rollup tables and their widths. */
const ROLLUPS_0002 = [
  { table: 'usage_hourly', width: 3_600_000 },
  { table: 'usage_daily', width: 86_400_000 },
] as const;

export const migrations: Record<string, Migration> = {
  '0001_usage_records': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('usage_records')
        .addColumn('request_id', 'varchar(128)', (c) => c.primaryKey())
        .addColumn('project_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('endpoint', 'varchar(64)', (c) => c.notNull())
        .addColumn('key_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('model', 'varchar(200)', (c) => c.notNull())
        .addColumn('worker_id', 'varchar(128)', (c) => c.notNull())
        .addColumn('hardware_pool', 'varchar(40)', (c) => c.notNull())
        .addColumn('tier', 'varchar(64)', (c) => c.notNull())
        .addColumn('http_status', 'integer', (c) => c.notNull())
        .addColumn('error_code', 'varchar(64)', (c) => c.notNull())
        .addColumn('prompt_tokens', 'bigint', (c) => c.notNull())
        .addColumn('completion_tokens', 'bigint', (c) => c.notNull())
        .addColumn('cached_tokens', 'bigint', (c) => c.notNull())
        .addColumn('ttft_ms', 'bigint', (c) => c.notNull())
        .addColumn('duration_ms', 'bigint', (c) => c.notNull())
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .addColumn('cancelled', 'integer', (c) => c.notNull())
        .execute();
      // Every read is one project over a time range: a range scan of this index.
      await db.schema
        .createIndex('usage_records_project_started_idx')
        .on('usage_records')
        .columns(['project_id', 'started_at', 'request_id'])
        .execute();
      // Retention deletes by age across projects.
      await db.schema.createIndex('usage_records_started_idx').on('usage_records').column('started_at').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('usage_records').execute();
    },
  },
  '0002_usage_rollups': {
    async up(db: Kysely<unknown>) {
      // rollups.ts: per (project, UTC hour | day, key, endpoint, model), kept in step with the
      // raw rows by every write; grouped reads of whole hours and days read these instead.
      for (const { table, width } of ROLLUPS_0002) {
        await db.schema
          .createTable(table)
          .addColumn('project_id', 'varchar(64)', (c) => c.notNull())
          .addColumn('bucket_start', 'bigint', (c) => c.notNull())
          .addColumn('key_id', 'varchar(64)', (c) => c.notNull())
          .addColumn('endpoint', 'varchar(64)', (c) => c.notNull())
          .addColumn('model', 'varchar(200)', (c) => c.notNull())
          .addColumn('requests', 'bigint', (c) => c.notNull())
          .addColumn('errors', 'bigint', (c) => c.notNull())
          .addColumn('cancelled', 'bigint', (c) => c.notNull())
          .addColumn('prompt_tokens', 'bigint', (c) => c.notNull())
          .addColumn('completion_tokens', 'bigint', (c) => c.notNull())
          .addColumn('cached_tokens', 'bigint', (c) => c.notNull())
          // One project over a time range is a range scan of the primary key.
          .addPrimaryKeyConstraint(`${table}_pk`, ['project_id', 'bucket_start', 'key_id', 'endpoint', 'model'])
          .execute();
        // Records stored before this migration.
        await sql`
          INSERT INTO ${sql.table(table)} (project_id, bucket_start, key_id, endpoint, model, requests, errors, cancelled,
                                           prompt_tokens, completion_tokens, cached_tokens)
          SELECT project_id, started_at - (started_at % ${sql.lit(width)}), key_id, endpoint, model, count(*),
                 sum(CASE WHEN cancelled = 0 AND (error_code <> '' OR http_status >= 400) THEN 1 ELSE 0 END),
                 sum(cancelled), sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens)
          FROM usage_records
          GROUP BY project_id, started_at - (started_at % ${sql.lit(width)}), key_id, endpoint, model`.execute(db);
      }
      // One index fewer on the hot table: retention now deletes project by project over
      // (project_id, started_at), the projects taken from the hourly rollup.
      await db.schema.dropIndex('usage_records_started_idx').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.createIndex('usage_records_started_idx').on('usage_records').column('started_at').execute();
      for (const { table } of ROLLUPS_0002) await db.schema.dropTable(table).execute();
    },
  },
};

/** Brings the schema to the latest version; returns the migrations applied. */
export async function migrateToLatest(db: Kysely<unknown>, schema?: string): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: () => Promise.resolve(migrations) },
    migrationTableName: 'ledger_migration',
    migrationLockTableName: 'ledger_migration_lock',
    ...(schema === undefined ? {} : { migrationTableSchema: schema }),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`ledger database migration ${failed} failed`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
