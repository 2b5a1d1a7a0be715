/**
 * Versioned ledger migrations, provided in code. Never edit a released migration; add the next.
 * Portable column types (SQLite and PostgreSQL): times `bigint` epoch ms, booleans `integer` 0/1.
 * Kysely's bookkeeping tables get ledger-specific names so the ledger can share a database and
 * schema with the auth service.
 */
import type { Kysely } from 'kysely';
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
