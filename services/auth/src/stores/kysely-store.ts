/**
 * The AuthStore on Kysely: opens SQLite or PostgreSQL (lib/db/kysely.ts), migrates it
 * (migrations.ts) and serves the project/endpoint queries (project-queries.ts) and the key
 * queries (key-queries.ts), one query code path for both dialects.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { openMigrated, pingDatabase, type StoreLocation } from '../../../../lib/db/kysely.js';
import type { AuthDatabase } from './database.js';
import { keyQueries } from './key-queries.js';
import { migrateToLatest } from './migrations.js';
import { projectQueries } from './project-queries.js';
import type { AuthStore } from './store.js';
import { workerQueries } from './worker-queries.js';

export type { StoreLocation } from '../../../../lib/db/kysely.js';

/** Opens the database, migrates it to the latest version and returns the store. */
export async function openAuthStore(location: StoreLocation, logger: Logger): Promise<AuthStore> {
  const db = await openMigrated<AuthDatabase>(location, logger, { name: 'auth', foreignKeys: true, migrate: migrateToLatest });
  return createKyselyStore(db, location.dialect);
}

/** The store over an open, migrated database; closing the store destroys `db`. */
function createKyselyStore(db: Kysely<AuthDatabase>, dialect: 'sqlite' | 'postgres'): AuthStore {
  return {
    dialect,
    ...projectQueries(db),
    ...keyQueries(db),
    ...workerQueries(db),
    ping: () => pingDatabase(db as Kysely<unknown>),
    async close() {
      await db.destroy();
    },
  };
}
