/**
 * Versioned ledger migrations, provided in code. Never edit a released migration; add the next.
 * Portable column types (SQLite and PostgreSQL): times `bigint` epoch ms, booleans `integer` 0/1.
 * Kysely's bookkeeping tables get ledger-specific names so the ledger can share a database and
 * schema with the auth service.
 */
import { sql, type Kysely } from 'kysely';
import { Migrator, type Migration } from 'kysely/migration';

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
  '0002_usage_rollup': {
    async up(db: Kysely<unknown>) {
      // The figures of every (project, UTC hour, key, endpoint, model), added to in the same
      // statement or transaction that inserts the raw rows: grouped reads of whole hours read
      // this table instead of aggregating raw rows.
      await db.schema
        .createTable('usage_rollup')
        .addColumn('project_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('hour_start', 'bigint', (c) => c.notNull())
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
        .addPrimaryKeyConstraint('usage_rollup_pk', ['project_id', 'hour_start', 'key_id', 'endpoint', 'model'])
        .execute();
      // Records stored before this migration.
      await sql`
        INSERT INTO usage_rollup (project_id, hour_start, key_id, endpoint, model, requests, errors, cancelled,
                                  prompt_tokens, completion_tokens, cached_tokens)
        SELECT project_id, started_at - (started_at % 3600000), key_id, endpoint, model, count(*),
               sum(CASE WHEN cancelled = 0 AND (error_code <> '' OR http_status >= 400) THEN 1 ELSE 0 END),
               sum(cancelled), sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens)
        FROM usage_records
        GROUP BY project_id, started_at - (started_at % 3600000), key_id, endpoint, model`.execute(db);
      // One index fewer on the hot table: retention now deletes project by project over
      // (project_id, started_at), the projects taken from the rollup.
      await db.schema.dropIndex('usage_records_started_idx').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.createIndex('usage_records_started_idx').on('usage_records').column('started_at').execute();
      await db.schema.dropTable('usage_rollup').execute();
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
