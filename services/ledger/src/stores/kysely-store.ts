/**
 * The LedgerStore on Kysely: one read code path for SQLite (better-sqlite3, the embedded
 * default) and PostgreSQL (`pg` Pool), opened the same way as the auth service's store. Writes
 * take each dialect's cheapest path (sqlite-writer.ts, postgres-writer.ts): raw rows keyed by
 * request id (a batch sent twice stores nothing twice) and, atomically with them, the hourly
 * rollup. Grouped reads take whole hours from the rollup and only the partial hours at the
 * range's edges from the raw rows; raw reads are a range scan of (project_id, started_at).
 */
import { openMigrated, openSqliteDatabase, pingDatabase, sqliteKysely, type StoreLocation } from '../../../../lib/db/kysely.js';
import { Kysely, sql, type RawBuilder, type Selectable } from 'kysely';
import type { Logger } from 'pino';
import { migrateToLatest } from './migrations.js';
import { createPostgresWriter } from './postgres-writer.js';
import { createSqliteWriter } from './sqlite-writer.js';
import type { GroupName, LedgerRow, LedgerStore, UsageBucketRow } from './store.js';

interface UsageRecordsTable {
  request_id: string;
  project_id: string;
  endpoint: string;
  key_id: string;
  model: string;
  worker_id: string;
  hardware_pool: string;
  tier: string;
  http_status: number;
  error_code: string;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  ttft_ms: number;
  duration_ms: number;
  started_at: number;
  cancelled: number;
}

/** Figures of one (project, UTC hour, key, endpoint, model). */
interface UsageRollupTable {
  project_id: string;
  hour_start: number;
  key_id: string;
  endpoint: string;
  model: string;
  requests: number;
  errors: number;
  cancelled: number;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
}

export interface LedgerDatabase {
  usage_records: UsageRecordsTable;
  usage_rollup: UsageRollupTable;
}

/** Stores rows whose request id is new and adds them to the rollup, atomically; returns how many were new. */
export type LedgerWriter = (rows: readonly LedgerRow[]) => number | Promise<number>;

export type { StoreLocation } from '../../../../lib/db/kysely.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Opens the database, migrates it to the latest version and returns the store. */
export async function openLedgerStore(location: StoreLocation, logger: Logger): Promise<LedgerStore> {
  if (location.dialect === 'sqlite') {
    const database = openSqliteDatabase(location.path);
    const db = await openMigrated(location, logger, { name: 'ledger', migrate: migrateToLatest, db: sqliteKysely<LedgerDatabase>(database) });
    return createKyselyLedgerStore(db, 'sqlite', createSqliteWriter(database));
  }
  const db = await openMigrated<LedgerDatabase>(location, logger, { name: 'ledger', migrate: migrateToLatest });
  return createKyselyLedgerStore(db, 'postgres', createPostgresWriter(db as Kysely<unknown>));
}

const fromRow = (r: Selectable<UsageRecordsTable>): LedgerRow => ({
  requestId: r.request_id,
  projectId: r.project_id,
  endpoint: r.endpoint,
  keyId: r.key_id,
  model: r.model,
  workerId: r.worker_id,
  hardwarePool: r.hardware_pool,
  tier: r.tier,
  httpStatus: Number(r.http_status),
  errorCode: r.error_code,
  promptTokens: Number(r.prompt_tokens),
  completionTokens: Number(r.completion_tokens),
  cachedTokens: Number(r.cached_tokens),
  ttftMs: Number(r.ttft_ms),
  durationMs: Number(r.duration_ms),
  startedAt: Number(r.started_at),
  cancelled: Number(r.cancelled) === 1,
});

/** Bucket width of the time groupings (UTC hours and days). */
const BUCKET_MS: Partial<Record<GroupName, number>> = { hour: HOUR_MS, day: DAY_MS };
const COLUMN = { key: 'key_id', endpoint: 'endpoint', model: 'model' } as const;

/** The grouped expression over `time` (a column in ms); widths are inlined literals so SELECT and GROUP BY match. */
function groupExpression(groupBy: GroupName, time: 'started_at' | 'hour_start'): RawBuilder<string | number> {
  const width = BUCKET_MS[groupBy];
  if (width !== undefined) return width === HOUR_MS && time === 'hour_start' ? sql<number>`hour_start` : sql<number>`${sql.ref(time)} - (${sql.ref(time)} % ${sql.lit(width)})`;
  return sql<string>`${sql.ref(COLUMN[groupBy as keyof typeof COLUMN])}`;
}

/** @internal exported for tests that bring their own Kysely instance. */
export function createKyselyLedgerStore(db: Kysely<LedgerDatabase>, dialect: 'sqlite' | 'postgres', writer: LedgerWriter): LedgerStore {
  return {
    dialect,

    async insert(rows) {
      if (rows.length === 0) return 0;
      return writer(rows);
    },

    async usage({ projectId, from, to, limit, after, groupBy }) {
      const width = BUCKET_MS[groupBy];
      // Time buckets page by raising the range start to the bucket after the cursor (stays a
      // range scan); other groups page by comparing the grouped column.
      const start = width !== undefined && after !== undefined ? Math.max(from, Number(after) * 1000 + width) : from;
      // [start, to) = raw head [start, hoursFrom) + whole hours [hoursFrom, hoursTo) from the
      // rollup + raw tail [hoursTo, to). Figures are identical either way; the rollup has one
      // row per hour and (key, endpoint, model) where the raw table has one per request.
      const hoursFrom = Math.ceil(start / HOUR_MS) * HOUR_MS;
      const hoursTo = Math.floor(to / HOUR_MS) * HOUR_MS;
      const useRollup = hoursFrom < hoursTo;
      const rawRanges: Array<[number, number]> = useRollup
        ? [[start, hoursFrom], [hoursTo, to]].filter(([a, b]) => a! < b!) as Array<[number, number]>
        : [[start, to]];
      const rollup = db
        .selectFrom('usage_rollup')
        .select([
          groupExpression(groupBy, 'hour_start').as('grp'),
          'requests',
          'errors',
          'cancelled',
          'prompt_tokens',
          'completion_tokens',
          'cached_tokens',
        ])
        .where('project_id', '=', projectId)
        .where('hour_start', '>=', hoursFrom)
        .where('hour_start', '<', hoursTo);
      const raw = db
        .selectFrom('usage_records')
        .select([
          groupExpression(groupBy, 'started_at').as('grp'),
          sql<number>`1`.as('requests'),
          sql<number>`case when cancelled = 0 and (error_code <> '' or http_status >= 400) then 1 else 0 end`.as('errors'),
          'cancelled',
          'prompt_tokens',
          'completion_tokens',
          'cached_tokens',
        ])
        .where('project_id', '=', projectId)
        .where((eb) => eb.or(rawRanges.map(([a, b]) => eb.and([eb('started_at', '>=', a), eb('started_at', '<', b)]))));
      const parts = useRollup ? (rawRanges.length > 0 ? rollup.unionAll(raw) : rollup) : raw;
      let q = db
        .selectFrom(parts.as('u'))
        .select([
          'u.grp',
          sql<number>`sum(u.requests)`.as('requests'),
          sql<number>`sum(u.errors)`.as('errors'),
          sql<number>`sum(u.cancelled)`.as('cancelled'),
          sql<number>`sum(u.prompt_tokens)`.as('prompt_tokens'),
          sql<number>`sum(u.completion_tokens)`.as('completion_tokens'),
          sql<number>`sum(u.cached_tokens)`.as('cached_tokens'),
        ]);
      if (width === undefined && after !== undefined) q = q.where('u.grp', '>', after);
      const rows = await q.groupBy('u.grp').orderBy('u.grp').limit(limit + 1).execute();
      const buckets: UsageBucketRow[] = rows.slice(0, limit).map((r) => ({
        group: width === undefined ? String(r.grp) : String(Math.floor(Number(r.grp) / 1000)),
        requests: Number(r.requests),
        errors: Number(r.errors),
        cancelled: Number(r.cancelled),
        promptTokens: Number(r.prompt_tokens),
        completionTokens: Number(r.completion_tokens),
        cachedTokens: Number(r.cached_tokens),
      }));
      return { buckets, hasMore: rows.length > limit };
    },

    async records({ projectId, from, to, limit, after }) {
      let q = db
        .selectFrom('usage_records')
        .selectAll()
        .where('project_id', '=', projectId)
        .where('started_at', '>=', from)
        .where('started_at', '<', to);
      if (after !== undefined) {
        const cursor = await db
          .selectFrom('usage_records')
          .select('started_at')
          .where('project_id', '=', projectId)
          .where('request_id', '=', after)
          .executeTakeFirst();
        if (!cursor) return undefined;
        const at = Number(cursor.started_at);
        q = q.where((eb) =>
          eb.or([eb('started_at', '>', at), eb.and([eb('started_at', '=', at), eb('request_id', '>', after)])]),
        );
      }
      const rows = await q.orderBy('started_at').orderBy('request_id').limit(limit + 1).execute();
      return { records: rows.slice(0, limit).map(fromRow), hasMore: rows.length > limit };
    },

    async deleteBefore(cutoff, batch = 10_000) {
      // Project by project over (project_id, started_at), the projects taken from the rollup
      // (the raw table has no index on the time alone); bounded statements never hold one long lock.
      const projects = await db
        .selectFrom('usage_rollup')
        .select('project_id')
        .distinct()
        .where('hour_start', '<', cutoff)
        .execute();
      let total = 0;
      for (const { project_id: projectId } of projects) {
        for (;;) {
          const result = await db
            .deleteFrom('usage_records')
            .where('request_id', 'in', (eb) =>
              eb
                .selectFrom('usage_records')
                .select('request_id')
                .where('project_id', '=', projectId)
                .where('started_at', '<', cutoff)
                .limit(batch),
            )
            .executeTakeFirst();
          const deleted = Number(result.numDeletedRows);
          total += deleted;
          if (deleted < batch) break;
        }
      }
      // Rollup hours that lie wholly before the cutoff (the service passes whole hours).
      await db.deleteFrom('usage_rollup').where('hour_start', '<=', cutoff - HOUR_MS).execute();
      return total;
    },

    ping: () => pingDatabase(db as Kysely<unknown>),

    async close() {
      await db.destroy();
    },
  };
}
