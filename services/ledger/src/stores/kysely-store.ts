/**
 * The LedgerStore on Kysely: one query code path for SQLite (better-sqlite3, the embedded
 * default) and PostgreSQL (`pg` Pool), opened the same way as the auth service's store.
 * Writes are `INSERT … ON CONFLICT (request_id) DO NOTHING`, so a batch sent twice stores nothing
 * twice. Reads are one project over a time range: a range scan of (project_id, started_at).
 */
import { openMigrated, type StoreLocation } from '../../../../lib/db/kysely.js';
import { Kysely, sql, type RawBuilder, type Selectable } from 'kysely';
import type { Logger } from 'pino';
import { migrateToLatest } from './migrations.js';
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

export interface LedgerDatabase {
  usage_records: UsageRecordsTable;
}

export type { StoreLocation } from '../../../../lib/db/kysely.js';

/** Rows per INSERT statement: 17 parameters each stays under both dialects' parameter limits. */
const INSERT_CHUNK = 500;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Opens the database, migrates it to the latest version and returns the store. */
export async function openLedgerStore(location: StoreLocation, logger: Logger): Promise<LedgerStore> {
  const db = await openMigrated<LedgerDatabase>(location, logger, { name: 'ledger', migrate: migrateToLatest });
  return createKyselyLedgerStore(db, location.dialect);
}


const toRow = (r: LedgerRow): UsageRecordsTable => ({
  request_id: r.requestId,
  project_id: r.projectId,
  endpoint: r.endpoint,
  key_id: r.keyId,
  model: r.model,
  worker_id: r.workerId,
  hardware_pool: r.hardwarePool,
  tier: r.tier,
  http_status: r.httpStatus,
  error_code: r.errorCode,
  prompt_tokens: r.promptTokens,
  completion_tokens: r.completionTokens,
  cached_tokens: r.cachedTokens,
  ttft_ms: r.ttftMs,
  duration_ms: r.durationMs,
  started_at: r.startedAt,
  cancelled: r.cancelled ? 1 : 0,
});

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

/** The grouped expression; widths are inlined literals so SELECT and GROUP BY match textually. */
function groupExpression(groupBy: GroupName): RawBuilder<string | number> {
  const width = BUCKET_MS[groupBy];
  if (width !== undefined) return sql<number>`started_at - (started_at % ${sql.lit(width)})`;
  return sql<string>`${sql.ref(COLUMN[groupBy as keyof typeof COLUMN])}`;
}

/** @internal exported for tests that bring their own Kysely instance. */
export function createKyselyLedgerStore(db: Kysely<LedgerDatabase>, dialect: 'sqlite' | 'postgres'): LedgerStore {
  return {
    dialect,

    async insert(rows) {
      if (rows.length === 0) return 0;
      return db.transaction().execute(async (trx) => {
        let inserted = 0;
        for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
          const result = await trx
            .insertInto('usage_records')
            .values(rows.slice(i, i + INSERT_CHUNK).map(toRow))
            .onConflict((oc) => oc.column('request_id').doNothing())
            .executeTakeFirst();
          inserted += Number(result.numInsertedOrUpdatedRows ?? 0);
        }
        return inserted;
      });
    },

    async usage({ projectId, from, to, limit, after, groupBy }) {
      const width = BUCKET_MS[groupBy];
      // Time buckets page by raising the range start to the bucket after the cursor (stays an
      // index range scan); other groups page by comparing the grouped column.
      const start = width !== undefined && after !== undefined ? Math.max(from, Number(after) * 1000 + width) : from;
      const group = groupExpression(groupBy);
      let q = db
        .selectFrom('usage_records')
        .select([
          group.as('grp'),
          sql<number>`count(*)`.as('requests'),
          sql<number>`sum(case when cancelled = 0 and (error_code <> '' or http_status >= 400) then 1 else 0 end)`.as('errors'),
          sql<number>`sum(cancelled)`.as('cancelled'),
          sql<number>`sum(prompt_tokens)`.as('prompt_tokens'),
          sql<number>`sum(completion_tokens)`.as('completion_tokens'),
          sql<number>`sum(cached_tokens)`.as('cached_tokens'),
        ])
        .where('project_id', '=', projectId)
        .where('started_at', '>=', start)
        .where('started_at', '<', to);
      if (width === undefined && after !== undefined) q = q.where(group, '>', after);
      const rows = await q.groupBy(group).orderBy(group).limit(limit + 1).execute();
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
      let total = 0;
      for (;;) {
        // Bounded statements: a large backlog never holds one long lock.
        const result = await db
          .deleteFrom('usage_records')
          .where('request_id', 'in', (eb) =>
            eb.selectFrom('usage_records').select('request_id').where('started_at', '<', cutoff).limit(batch),
          )
          .executeTakeFirst();
        const deleted = Number(result.numDeletedRows);
        total += deleted;
        if (deleted < batch) return total;
      }
    },

    async close() {
      await db.destroy();
    },
  };
}
