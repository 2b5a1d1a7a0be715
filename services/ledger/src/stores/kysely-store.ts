/**
 * The LedgerStore on Kysely: one read code path for SQLite (better-sqlite3, the embedded
 * default) and PostgreSQL (`pg` Pool), opened the same way as the auth service's store. Writes
 * take each dialect's cheapest path (sqlite-writer.ts, postgres-writer.ts): raw rows keyed by
 * request id (a batch sent twice stores nothing twice) and, atomically with them, the hourly and
 * daily rollups (rollups.ts). Grouped reads take whole days and hours from the rollups and only
 * the partial hours at the range's edges from the raw rows; raw reads are a range scan of
 * (project_id, started_at).
 */
import { openMigrated, openSqliteDatabase, pingDatabase, sqliteKysely, type StoreLocation } from '../../../../lib/db/kysely.js';
import { Kysely, sql, type RawBuilder, type Selectable } from 'kysely';
import type { Logger } from 'pino';
import { migrateToLatest } from './migrations.js';
import { createPostgresWriter } from './postgres-writer.js';
import { createSqliteWriter } from './sqlite-writer.js';
import { DAILY, DAY_MS, HOUR_MS, HOURLY, type Rollup } from './rollups.js';
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

/** Figures of one (project, UTC hour or day, key, endpoint, model): rollups.ts. */
interface UsageRollupTable {
  project_id: string;
  bucket_start: number;
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
  usage_hourly: UsageRollupTable;
  usage_daily: UsageRollupTable;
}

/** Stores rows whose request id is new and adds them to the rollups, atomically; returns how many were new. */
export type LedgerWriter = (rows: readonly LedgerRow[]) => number | Promise<number>;

export type { StoreLocation } from '../../../../lib/db/kysely.js';

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
function groupExpression(groupBy: GroupName, time: 'started_at' | 'bucket_start'): RawBuilder<string | number> {
  const width = BUCKET_MS[groupBy];
  if (width !== undefined) return sql<number>`${sql.ref(time)} - (${sql.ref(time)} % ${sql.lit(width)})`;
  return sql<string>`${sql.ref(COLUMN[groupBy as keyof typeof COLUMN])}`;
}

type Span = [from: number, to: number];

/**
 * Splits [from, to) into the parts each table answers exactly: whole UTC days (unless grouping
 * by hour) from the daily rollup, whole hours from the hourly one, the partial hours at the
 * edges from the raw rows.
 */
function plan(from: number, to: number, groupBy: GroupName): { raw: Span[]; rollups: Array<[Rollup, Span]> } {
  const floor = (t: number, w: number): number => Math.floor(t / w) * w;
  const ceil = (t: number, w: number): number => Math.ceil(t / w) * w;
  const nonEmpty = (spans: Span[]): Span[] => spans.filter(([a, b]) => a < b);
  const [h1, h2] = [ceil(from, HOUR_MS), floor(to, HOUR_MS)];
  if (h1 >= h2) return { raw: [[from, to]], rollups: [] };
  const raw = nonEmpty([[from, h1], [h2, to]]);
  const [d1, d2] = [ceil(h1, DAY_MS), floor(h2, DAY_MS)];
  if (groupBy === 'hour' || d1 >= d2) return { raw, rollups: [[HOURLY, [h1, h2]]] };
  return {
    raw,
    rollups: [[DAILY, [d1, d2] as Span], ...nonEmpty([[h1, d1], [d2, h2]]).map((span) => [HOURLY, span] as [Rollup, Span])],
  };
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
      const { raw, rollups } = plan(start, to, groupBy);
      const parts = rollups.map(([{ table }, [a, b]]) =>
        db
          .selectFrom(table)
          .select([
            groupExpression(groupBy, 'bucket_start').as('grp'),
            'requests',
            'errors',
            'cancelled',
            'prompt_tokens',
            'completion_tokens',
            'cached_tokens',
          ])
          .where('project_id', '=', projectId)
          .where('bucket_start', '>=', a)
          .where('bucket_start', '<', b),
      );
      const rawPart =
        raw.length === 0
          ? undefined
          : db
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
              .where((eb) => eb.or(raw.map(([a, b]) => eb.and([eb('started_at', '>=', a), eb('started_at', '<', b)]))));
      const [first, ...rest] = rawPart ? [rawPart, ...parts] : parts;
      if (!first) return { buckets: [], hasMore: false };
      const union = rest.reduce((u, part) => u.unionAll(part), first);
      let q = db
        .selectFrom(union.as('u'))
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
        .selectFrom('usage_hourly')
        .select('project_id')
        .distinct()
        .where('bucket_start', '<', cutoff)
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
      // Rollup buckets that lie wholly before the cutoff (the service passes whole UTC days).
      await db.deleteFrom('usage_hourly').where('bucket_start', '<=', cutoff - HOUR_MS).execute();
      await db.deleteFrom('usage_daily').where('bucket_start', '<=', cutoff - DAY_MS).execute();
      return total;
    },

    ping: () => pingDatabase(db as Kysely<unknown>),

    async close() {
      await db.destroy();
    },
  };
}
