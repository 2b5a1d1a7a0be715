/**
 * The SQLite write path: statements prepared once, in one transaction per batch: the raw row per
 * record, then one upsert per rollup bucket the batch's new rows fall into (summed here first).
 * A row whose request id is already stored changes nothing, so it adds nothing to the rollups
 * either: re-sending a batch is harmless.
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
    add: database.prepare(`INSERT INTO ${table} (${ROLLUP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ${addOnConflict(table)}`),
  }));
  return database.transaction((rows: readonly LedgerRow[]): number => {
    const added: LedgerRow[] = [];
    for (const r of rows) {
      const { changes } = insertRow.run(
        r.requestId, r.projectId, r.endpoint, r.keyId, r.model, r.workerId, r.hardwarePool, r.tier, r.httpStatus,
        r.errorCode, r.promptTokens, r.completionTokens, r.cachedTokens, r.ttftMs, r.durationMs, r.startedAt, r.cancelled ? 1 : 0,
      );
      if (changes > 0) added.push(r);
    }
    for (const { width, add } of rollups) {
      // [project, bucket, key, endpoint, model, requests, errors, cancelled, prompt, completion, cached]
      const buckets = new Map<string, [string, number, string, string, string, number, number, number, number, number, number]>();
      for (const r of added) {
        const start = r.startedAt - (r.startedAt % width);
        const id = JSON.stringify([r.projectId, start, r.keyId, r.endpoint, r.model]);
        const b = buckets.get(id) ?? [r.projectId, start, r.keyId, r.endpoint, r.model, 0, 0, 0, 0, 0, 0];
        b[5]++;
        b[6] += isError(r) ? 1 : 0;
        b[7] += r.cancelled ? 1 : 0;
        b[8] += r.promptTokens;
        b[9] += r.completionTokens;
        b[10] += r.cachedTokens;
        buckets.set(id, b);
      }
      for (const b of buckets.values()) add.run(...b);
    }
    return added.length;
  });
}
