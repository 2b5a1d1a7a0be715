/**
 * The SQLite write path: statements prepared once (the raw row, then one upsert per rollup) run
 * per record inside one transaction per batch. A row whose request id is already stored changes
 * nothing, so it adds nothing to the rollups either: re-sending a batch is harmless.
 */
import type Database from 'better-sqlite3';
import { addOnConflict, isError, ROLLUP_COLUMNS, ROLLUPS } from './rollups.js';
import type { LedgerRow } from './store.js';

export function createSqliteWriter(database: Database.Database): (rows: readonly LedgerRow[]) => number {
  const insertRow = database.prepare(
    `INSERT INTO usage_records (request_id, project_id, endpoint, key_id, model, worker_id, hardware_pool, tier,
       http_status, error_code, prompt_tokens, completion_tokens, cached_tokens, ttft_ms, duration_ms, started_at, cancelled)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (request_id) DO NOTHING`,
  );
  const rollups = ROLLUPS.map(({ table, width }) => ({
    width,
    add: database.prepare(`INSERT INTO ${table} (${ROLLUP_COLUMNS}) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?) ${addOnConflict(table)}`),
  }));
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
      const error = isError(r) ? 1 : 0;
      for (const { width, add } of rollups) {
        add.run(
          r.projectId, r.startedAt - (r.startedAt % width), r.keyId, r.endpoint, r.model,
          error, cancelled, r.promptTokens, r.completionTokens, r.cachedTokens,
        );
      }
    }
    return inserted;
  });
}
