/**
 * The PostgreSQL write path: one statement per batch whatever its size. The batch travels as 17
 * array parameters expanded by unnest() (no per-row SQL to build or parse); the raw insert skips
 * request ids already stored, and only the rows it actually inserted (its RETURNING) are summed
 * into the rollups in the same statement, so they can never disagree and a re-sent batch adds
 * nothing. Rollup rows are upserted in key order so concurrent batches lock them in one order.
 */
import { sql, type Kysely } from 'kysely';
import { addOnConflict, ERROR_SQL, ROLLUP_COLUMNS, ROLLUPS } from './rollups.js';
import type { LedgerRow } from './store.js';

/** One data-modifying CTE per rollup, fed by the `inserted` CTE (constants only, no input). */
const ROLLUP_CTES = ROLLUPS.map(
  ({ table, width }) => `, ${table} AS (
    INSERT INTO ${table} (${ROLLUP_COLUMNS})
    SELECT project_id, started_at - (started_at % ${width}), key_id, endpoint, model, count(*), sum(${ERROR_SQL}),
           sum(cancelled), sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens)
    FROM inserted
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4, 5
    ${addOnConflict(table)}
    RETURNING 1
  )`,
).join('');

export function createPostgresWriter(db: Kysely<unknown>): (rows: readonly LedgerRow[]) => Promise<number> {
  return async (rows) => {
    const col = <T>(pick: (r: LedgerRow) => T): T[] => rows.map(pick);
    const result = await sql<{ inserted: number }>`
      WITH input AS (
        SELECT * FROM unnest(
          ${col((r) => r.requestId)}::text[], ${col((r) => r.projectId)}::text[], ${col((r) => r.endpoint)}::text[],
          ${col((r) => r.keyId)}::text[], ${col((r) => r.model)}::text[], ${col((r) => r.workerId)}::text[],
          ${col((r) => r.hardwarePool)}::text[], ${col((r) => r.tier)}::text[], ${col((r) => r.httpStatus)}::int[],
          ${col((r) => r.errorCode)}::text[], ${col((r) => r.promptTokens)}::bigint[], ${col((r) => r.completionTokens)}::bigint[],
          ${col((r) => r.cachedTokens)}::bigint[], ${col((r) => r.ttftMs)}::bigint[], ${col((r) => r.durationMs)}::bigint[],
          ${col((r) => r.startedAt)}::bigint[], ${col((r) => (r.cancelled ? 1 : 0))}::int[]
        ) AS t(request_id, project_id, endpoint, key_id, model, worker_id, hardware_pool, tier, http_status, error_code,
               prompt_tokens, completion_tokens, cached_tokens, ttft_ms, duration_ms, started_at, cancelled)
      ), inserted AS (
        INSERT INTO usage_records (request_id, project_id, endpoint, key_id, model, worker_id, hardware_pool, tier,
          http_status, error_code, prompt_tokens, completion_tokens, cached_tokens, ttft_ms, duration_ms, started_at, cancelled)
        SELECT * FROM input
        ON CONFLICT (request_id) DO NOTHING
        RETURNING project_id, started_at, key_id, endpoint, model, http_status, error_code, cancelled,
                  prompt_tokens, completion_tokens, cached_tokens
      )${sql.raw(ROLLUP_CTES)}
      SELECT count(*)::int AS inserted FROM inserted`.execute(db);
    return Number(result.rows[0]?.inserted ?? 0);
  };
}
