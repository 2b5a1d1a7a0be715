/**
 * The SQLite write path: two statements prepared once (the raw row, then the rollup upsert) run
 * per record inside one transaction per batch. A row whose request id is already stored changes
 * nothing, so it adds nothing to the rollup either: re-sending a batch is harmless.
 */
import type Database from 'better-sqlite3';
import type { LedgerRow } from './store.js';

const HOUR_MS = 3_600_000;

export function createSqliteWriter(database: Database.Database): (rows: readonly LedgerRow[]) => number {
  const insertRow = database.prepare(
    `INSERT INTO usage_records (request_id, project_id, endpoint, key_id, model, worker_id, hardware_pool, tier,
       http_status, error_code, prompt_tokens, completion_tokens, cached_tokens, ttft_ms, duration_ms, started_at, cancelled)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (request_id) DO NOTHING`,
  );
  const addToRollup = database.prepare(
    `INSERT INTO usage_rollup (project_id, hour_start, key_id, endpoint, model, requests, errors, cancelled,
       prompt_tokens, completion_tokens, cached_tokens)
     VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)
     ON CONFLICT (project_id, hour_start, key_id, endpoint, model) DO UPDATE SET
       requests = requests + 1, errors = errors + excluded.errors, cancelled = cancelled + excluded.cancelled,
       prompt_tokens = prompt_tokens + excluded.prompt_tokens, completion_tokens = completion_tokens + excluded.completion_tokens,
       cached_tokens = cached_tokens + excluded.cached_tokens`,
  );
  return database.transaction((rows: readonly LedgerRow[]): number => {
    let inserted = 0;
    for (const r of rows) {
      const cancelled = r.cancelled ? 1 : 0;
      const { changes } = insertRow.run(
        r.requestId, r.projectId, r.endpoint, r.keyId, r.model, r.workerId, r.hardwarePool, r.tier, r.httpStatus,
        r.errorCode, r.promptTokens, r.completionTokens, r.cachedTokens, r.ttftMs, r.durationMs, r.startedAt, cancelled,
      );
      if (changes === 0) continue;
      inserted++;
      const error = !r.cancelled && (r.errorCode !== '' || r.httpStatus >= 400) ? 1 : 0;
      addToRollup.run(
        r.projectId, r.startedAt - (r.startedAt % HOUR_MS), r.keyId, r.endpoint, r.model,
        error, cancelled, r.promptTokens, r.completionTokens, r.cachedTokens,
      );
    }
    return inserted;
  });
}
