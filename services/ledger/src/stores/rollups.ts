/**
 * The ledger's rollup tables: the figures of every (project, UTC bucket, key, endpoint, model),
 * added to in the same statement or transaction that inserts the raw rows (only the rows it
 * actually inserted). Grouped reads take whole days from the daily table, whole hours from the
 * hourly one and only the partial hours at a range's edges from the raw rows.
 */
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

export interface Rollup {
  table: 'usage_hourly' | 'usage_daily';
  /** Bucket width in ms; `bucket_start` is a multiple of it (UTC). */
  width: number;
}

export const HOURLY: Rollup = { table: 'usage_hourly', width: HOUR_MS };
export const DAILY: Rollup = { table: 'usage_daily', width: DAY_MS };
export const ROLLUPS: readonly Rollup[] = [HOURLY, DAILY];

/** A record counts as an error when it was not cancelled and has an error code or status ≥ 400 (SQL over raw rows). */
export const ERROR_SQL = `CASE WHEN cancelled = 0 AND (error_code <> '' OR http_status >= 400) THEN 1 ELSE 0 END`;

/** The same rule in code. */
export const isError = (r: { cancelled: boolean; errorCode: string; httpStatus: number }): boolean =>
  !r.cancelled && (r.errorCode !== '' || r.httpStatus >= 400);

/** Columns of a rollup row, in insert order. */
export const ROLLUP_COLUMNS =
  'project_id, bucket_start, key_id, endpoint, model, requests, errors, cancelled, prompt_tokens, completion_tokens, cached_tokens';

/** `ON CONFLICT … DO UPDATE` adding the new figures to a rollup row (both dialects). */
export function addOnConflict(table: string): string {
  const add = (c: string) => `${c} = ${table}.${c} + excluded.${c}`;
  return `ON CONFLICT (project_id, bucket_start, key_id, endpoint, model) DO UPDATE SET ${[
    'requests',
    'errors',
    'cancelled',
    'prompt_tokens',
    'completion_tokens',
    'cached_tokens',
  ]
    .map(add)
    .join(', ')}`;
}
