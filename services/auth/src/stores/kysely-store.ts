/**
 * The AuthStore on Kysely: one query code path for SQLite (better-sqlite3, embedded default) and
 * PostgreSQL (`pg` Pool, for several auth replicas). Only opening the connection and recognising
 * a unique violation differ per dialect.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, type Selectable } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import { migrateToLatest } from './migrations.js';
import {
  UniqueViolationError,
  type ApiKeyRow,
  type AuthLookup,
  type AuthStore,
  type EndpointRow,
  type KeyPage,
  type NewApiKeyRow,
  type ProjectRow,
  type ScopeName,
} from './store.js';

interface ProjectsTable {
  id: string;
  slug: string;
  name: string;
  created_at: number;
}

interface EndpointsTable {
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

interface ApiKeysTable {
  id: string;
  project_id: string;
  name: string;
  prefix: string;
  key_hash: string;
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

/** Opens the database, migrates it to the latest version and returns the store. */
export async function openAuthStore(location: StoreLocation, logger: Logger): Promise<AuthStore> {
  const db = location.dialect === 'sqlite' ? openSqlite(location.path) : openPostgres(location, logger);
  try {
    const applied = await migrateToLatest(
      db as Kysely<unknown>,
      location.dialect === 'postgres' ? (location.schema ?? 'public') : undefined,
    );
    if (applied.length > 0) logger.info({ applied }, 'auth database migrated');
  } catch (err) {
    await db.destroy();
    throw err;
  }
  logger.info(
    location.dialect === 'sqlite'
      ? { dialect: 'sqlite', path: location.path }
      : { dialect: 'postgres', schema: location.schema ?? 'public' },
    'auth store open',
  );
  return createKyselyStore(db, location.dialect);
}

function openSqlite(file: string): Kysely<AuthDatabase> {
  if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const database = new Database(file);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('busy_timeout = 5000');
  database.pragma('foreign_keys = ON');
  return new Kysely<AuthDatabase>({ dialect: new SqliteDialect({ database }) });
}

const PG_INT8_OID = 20;

function openPostgres(
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

async function guardUnique<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (isUniqueViolation(err)) throw new UniqueViolationError(err);
    throw err;
  }
}

const toProject = (r: Selectable<ProjectsTable>): ProjectRow => ({
  id: r.id,
  slug: r.slug,
  name: r.name,
  createdAt: Number(r.created_at),
});

const toEndpoint = (r: Selectable<EndpointsTable>): EndpointRow => ({
  id: r.id,
  projectId: r.project_id,
  slug: r.slug,
  tier: r.tier,
  model: r.model,
  hardwarePool: r.hardware_pool,
  contextWindow: Number(r.context_window),
  active: Number(r.active) === 1,
  createdAt: Number(r.created_at),
});

const SCOPE_NAMES: readonly ScopeName[] = ['inference', 'management'];
const parseScopes = (s: string): ScopeName[] =>
  s.split(',').filter((x): x is ScopeName => (SCOPE_NAMES as readonly string[]).includes(x));
const nullableNumber = (v: number | null): number | null => (v === null ? null : Number(v));

const toKey = (r: Selectable<ApiKeysTable> & { endpoint_slug: string | null }): ApiKeyRow => ({
  id: r.id,
  projectId: r.project_id,
  name: r.name,
  prefix: r.prefix,
  keyHash: r.key_hash,
  scopes: parseScopes(r.scopes),
  endpointId: r.endpoint_id,
  endpointSlug: r.endpoint_slug,
  expiresAt: nullableNumber(r.expires_at),
  revokedAt: nullableNumber(r.revoked_at),
  rotatedFromKeyId: r.rotated_from_key_id,
  graceExpiresAt: nullableNumber(r.grace_expires_at),
  createdAt: Number(r.created_at),
  lastUsedAt: nullableNumber(r.last_used_at),
});

const keyColumns = [
  'k.id',
  'k.project_id',
  'k.name',
  'k.prefix',
  'k.key_hash',
  'k.scopes',
  'k.endpoint_id',
  'k.expires_at',
  'k.revoked_at',
  'k.rotated_from_key_id',
  'k.grace_expires_at',
  'k.created_at',
  'k.last_used_at',
  'be.slug as endpoint_slug',
] as const;

function keyValues(k: NewApiKeyRow): ApiKeysTable {
  return {
    id: k.id,
    project_id: k.projectId,
    name: k.name,
    prefix: k.prefix,
    key_hash: k.keyHash,
    scopes: k.scopes.join(','),
    endpoint_id: k.endpointId,
    expires_at: k.expiresAt,
    revoked_at: null,
    rotated_from_key_id: k.rotatedFromKeyId,
    grace_expires_at: null,
    created_at: k.createdAt,
    last_used_at: null,
  };
}

/** @internal exported for tests that bring their own Kysely instance. */
export function createKyselyStore(db: Kysely<AuthDatabase>, dialect: 'sqlite' | 'postgres'): AuthStore {
  const selectKeys = (q: Kysely<AuthDatabase> = db) =>
    q
      .selectFrom('api_keys as k')
      .leftJoin('endpoints as be', 'be.id', 'k.endpoint_id')
      .select(keyColumns);

  const findEndpoint = async (projectId: string, slug: string): Promise<EndpointRow | undefined> => {
    const row = await db
      .selectFrom('endpoints')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('slug', '=', slug)
      .executeTakeFirst();
    return row ? toEndpoint(row) : undefined;
  };

  const getApiKey = async (projectId: string, keyId: string): Promise<ApiKeyRow | undefined> => {
    const row = await selectKeys().where('k.project_id', '=', projectId).where('k.id', '=', keyId).executeTakeFirst();
    return row ? toKey(row) : undefined;
  };

  return {
    dialect,

    async findProject(idOrSlug) {
      const row = await db
        .selectFrom('projects')
        .selectAll()
        .where((eb) => eb.or([eb('id', '=', idOrSlug), eb('slug', '=', idOrSlug)]))
        .executeTakeFirst();
      return row ? toProject(row) : undefined;
    },

    async listProjects() {
      const rows = await db.selectFrom('projects').selectAll().orderBy('created_at').orderBy('id').execute();
      return rows.map(toProject);
    },

    async insertProject(p) {
      await guardUnique(() =>
        db.insertInto('projects').values({ id: p.id, slug: p.slug, name: p.name, created_at: p.createdAt }).execute(),
      );
    },

    findEndpoint,

    async listEndpoints(projectId) {
      const rows = await db
        .selectFrom('endpoints')
        .selectAll()
        .where('project_id', '=', projectId)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map(toEndpoint);
    },

    async insertEndpoint(e) {
      await guardUnique(() =>
        db
          .insertInto('endpoints')
          .values({
            id: e.id,
            project_id: e.projectId,
            slug: e.slug,
            tier: e.tier,
            model: e.model,
            hardware_pool: e.hardwarePool,
            context_window: e.contextWindow,
            active: e.active ? 1 : 0,
            created_at: e.createdAt,
          })
          .execute(),
      );
    },

    async setEndpointActive(projectId, slug, active) {
      await db
        .updateTable('endpoints')
        .set({ active: active ? 1 : 0 })
        .where('project_id', '=', projectId)
        .where('slug', '=', slug)
        .execute();
      return findEndpoint(projectId, slug);
    },

    async findKeyForAuth(keyHash, endpointSlug) {
      const row = await db
        .selectFrom('api_keys as k')
        .innerJoin('projects as p', 'p.id', 'k.project_id')
        .leftJoin('endpoints as be', 'be.id', 'k.endpoint_id')
        .leftJoin('endpoints as re', (join) =>
          join.onRef('re.project_id', '=', 'k.project_id').on('re.slug', '=', endpointSlug),
        )
        .select(keyColumns)
        .select([
          'p.id as p_id',
          'p.slug as p_slug',
          'p.name as p_name',
          'p.created_at as p_created_at',
          're.id as re_id',
          're.project_id as re_project_id',
          're.slug as re_slug',
          're.tier as re_tier',
          're.model as re_model',
          're.hardware_pool as re_hardware_pool',
          're.context_window as re_context_window',
          're.active as re_active',
          're.created_at as re_created_at',
        ])
        .where('k.key_hash', '=', keyHash)
        .executeTakeFirst();
      if (!row) return undefined;
      const lookup: AuthLookup = {
        key: toKey(row),
        project: toProject({ id: row.p_id, slug: row.p_slug, name: row.p_name, created_at: row.p_created_at }),
        endpoint: undefined,
      };
      if (
        row.re_id !== null &&
        row.re_project_id !== null &&
        row.re_slug !== null &&
        row.re_tier !== null &&
        row.re_model !== null &&
        row.re_hardware_pool !== null &&
        row.re_context_window !== null &&
        row.re_active !== null &&
        row.re_created_at !== null
      ) {
        lookup.endpoint = toEndpoint({
          id: row.re_id,
          project_id: row.re_project_id,
          slug: row.re_slug,
          tier: row.re_tier,
          model: row.re_model,
          hardware_pool: row.re_hardware_pool,
          context_window: row.re_context_window,
          active: row.re_active,
          created_at: row.re_created_at,
        });
      }
      return lookup;
    },

    async insertApiKey(k) {
      await guardUnique(() => db.insertInto('api_keys').values(keyValues(k)).execute());
    },

    getApiKey,

    async listApiKeys(projectId, { limit, after }): Promise<KeyPage> {
      let q = selectKeys().where('k.project_id', '=', projectId);
      if (after) {
        q = q.where((eb) =>
          eb.or([
            eb('k.created_at', '>', after.createdAt),
            eb.and([eb('k.created_at', '=', after.createdAt), eb('k.id', '>', after.id)]),
          ]),
        );
      }
      const rows = await q.orderBy('k.created_at').orderBy('k.id').limit(limit + 1).execute();
      return { keys: rows.slice(0, limit).map(toKey), hasMore: rows.length > limit };
    },

    async revokeApiKey(projectId, keyId, now) {
      await db
        .updateTable('api_keys')
        .set({ revoked_at: now })
        .where('project_id', '=', projectId)
        .where('id', '=', keyId)
        .where('revoked_at', 'is', null)
        .execute();
      return getApiKey(projectId, keyId);
    },

    async rotateApiKey(projectId, oldKeyId, graceExpiresAt, newKey) {
      return db.transaction().execute(async (trx) => {
        // Conditional update first: of two concurrent rotations, exactly one wins.
        const updated = await trx
          .updateTable('api_keys')
          .set({ grace_expires_at: graceExpiresAt })
          .where('project_id', '=', projectId)
          .where('id', '=', oldKeyId)
          .where('revoked_at', 'is', null)
          .where('grace_expires_at', 'is', null)
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) !== 1) return false;
        await guardUnique(() => trx.insertInto('api_keys').values(keyValues(newKey)).execute());
        return true;
      });
    },

    async touchApiKey(keyId, now, minIntervalMs) {
      await db
        .updateTable('api_keys')
        .set({ last_used_at: now })
        .where('id', '=', keyId)
        .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', now - minIntervalMs)]))
        .execute();
    },

    async close() {
      await db.destroy();
    },
  };
}
