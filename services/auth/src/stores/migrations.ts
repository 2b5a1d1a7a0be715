/**
 * Versioned schema migrations, provided in code (no migration folder to ship). Names sort in
 * order; never edit a released migration — add the next one. Column types are portable between
 * SQLite and PostgreSQL: times are `bigint` epoch milliseconds, booleans `integer` 0/1.
 */
import type { Kysely } from 'kysely';
import { Migrator, type Migration, type MigrationProvider } from 'kysely/migration';

export const migrations: Record<string, Migration> = {
  '0001_projects_endpoints_api_keys': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('projects')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('slug', 'varchar(40)', (c) => c.notNull().unique())
        .addColumn('name', 'varchar(200)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('endpoints')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('project_id', 'varchar(64)', (c) => c.notNull().references('projects.id'))
        .addColumn('slug', 'varchar(40)', (c) => c.notNull())
        .addColumn('tier', 'varchar(64)', (c) => c.notNull())
        .addColumn('model', 'varchar(200)', (c) => c.notNull())
        .addColumn('hardware_pool', 'varchar(40)', (c) => c.notNull())
        .addColumn('context_window', 'integer', (c) => c.notNull())
        .addColumn('active', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('endpoints_project_slug_unique', ['project_id', 'slug'])
        .execute();
      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('project_id', 'varchar(64)', (c) => c.notNull().references('projects.id'))
        .addColumn('name', 'varchar(200)', (c) => c.notNull())
        .addColumn('prefix', 'varchar(64)', (c) => c.notNull())
        .addColumn('key_hash', 'varchar(64)', (c) => c.notNull())
        .addColumn('scopes', 'varchar(200)', (c) => c.notNull())
        .addColumn('endpoint_id', 'varchar(64)', (c) => c.references('endpoints.id'))
        .addColumn('expires_at', 'bigint')
        .addColumn('revoked_at', 'bigint')
        .addColumn('rotated_from_key_id', 'varchar(64)', (c) => c.references('api_keys.id'))
        .addColumn('grace_expires_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_used_at', 'bigint')
        .execute();
      // Authenticate looks keys up by hash: unique, so a hash can never match two keys.
      await db.schema.createIndex('api_keys_key_hash_unique').on('api_keys').column('key_hash').unique().execute();
      // ListApiKeys pages by (project, creation, id).
      await db.schema
        .createIndex('api_keys_project_created_idx')
        .on('api_keys')
        .columns(['project_id', 'created_at', 'id'])
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('api_keys').execute();
      await db.schema.dropTable('endpoints').execute();
      await db.schema.dropTable('projects').execute();
    },
  },
  '0002_join_keys_self_hosted_workers': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('join_keys')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('project_id', 'varchar(64)', (c) => c.notNull().references('projects.id'))
        .addColumn('name', 'varchar(200)', (c) => c.notNull())
        .addColumn('prefix', 'varchar(64)', (c) => c.notNull())
        .addColumn('key_hash', 'varchar(64)', (c) => c.notNull().unique())
        .addColumn('max_uses', 'integer', (c) => c.notNull())
        .addColumn('use_count', 'integer', (c) => c.notNull())
        .addColumn('expires_at', 'bigint')
        .addColumn('revoked_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('self_hosted_workers')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('project_id', 'varchar(64)', (c) => c.notNull().references('projects.id'))
        .addColumn('join_key_id', 'varchar(64)', (c) => c.notNull().references('join_keys.id'))
        .addColumn('name', 'varchar(200)', (c) => c.notNull())
        .addColumn('credential_hash', 'varchar(64)', (c) => c.notNull().unique())
        .addColumn('credential_expires_at', 'bigint', (c) => c.notNull())
        .addColumn('model', 'varchar(200)', (c) => c.notNull())
        .addColumn('state', 'varchar(16)', (c) => c.notNull())
        .addColumn('last_seen_at', 'bigint')
        .addColumn('revoked_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('join_keys_project_idx').on('join_keys').columns(['project_id', 'created_at']).execute();
      await db.schema
        .createIndex('self_hosted_workers_project_idx')
        .on('self_hosted_workers')
        .columns(['project_id', 'created_at'])
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('self_hosted_workers').execute();
      await db.schema.dropTable('join_keys').execute();
    },
  },
  '0003_endpoint_kind': {
    // What an endpoint serves ('chat' or 'embeddings'); endpoints created before kinds existed
    // served chat.
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('endpoints')
        .addColumn('kind', 'varchar(20)', (c) => c.notNull().defaultTo('chat'))
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('endpoints').dropColumn('kind').execute();
    },
  },
};

export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve(migrations),
};

/**
 * Brings the schema to the latest version. `schema` (PostgreSQL) pins Kysely's bookkeeping
 * tables: without it, Kysely's existence check would see another schema's tables.
 */
export async function migrateToLatest(db: Kysely<unknown>, schema?: string): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: migrationProvider,
    ...(schema === undefined ? {} : { migrationTableSchema: schema }),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`auth database migration ${failed} failed`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
