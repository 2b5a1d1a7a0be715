/** The gateway's usage spool: what is not acknowledged survives the process, what is acknowledged goes. */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { UsageRecord } from '../../gen/xerotier/ledger/v1/ledger_service.js';
import { openUsageSpool } from '../../gateway/src/usage/spool.js';
import { spoolLayout } from '../../gateway/src/usage/spool-layout.js';
import { createLogger } from '../../lib/logging/logger.js';

const logger = createLogger('gateway', 'silent');

const record = (i: number): UsageRecord => ({
  requestId: `req_${i}`,
  projectId: 'proj_a',
  endpoint: 'chat',
  keyId: 'key_a',
  model: 'm',
  workerId: 'cpu-1',
  hardwarePool: 'cpu',
  tier: 'cpu_standard',
  httpStatus: 200,
  errorCode: '',
  promptTokens: 7 + i,
  completionTokens: 3,
  cachedTokens: 1,
  timeToFirstTokenMs: 12,
  durationMs: 40,
  startTime: new Date(Date.UTC(2026, 0, 1, 10, 0, 0, i)),
  cancelled: i % 2 === 1,
});

const spoolBytes = (dir: string): number => readdirSync(dir).reduce((n, f) => n + statSync(path.join(dir, f)).size, 0);

describe('usage spool', () => {
  it('keeps records until acknowledged, hands unacknowledged ones to the next process intact, skips a torn line', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'spool-'));
    try {
      const first = openUsageSpool(dir, logger);
      assert.deepEqual(first.recovered, []);
      const segments = [0, 1, 2].map((i) => first.append(record(i)));
      first.ack(segments.slice(0, 2));
      assert.ok(spoolBytes(dir) > 0, 'one record still unacknowledged: the file stays');
      first.ack(segments.slice(2));
      assert.equal(spoolBytes(dir), 0, 'everything acknowledged: the file is emptied');
      first.append(record(3));
      first.append(record(4));
      // The process dies here (no close): the next one finds both, field for field.
      const files = readdirSync(dir);
      appendFileSync(path.join(dir, files[0]!), '{"requestId":"req_torn","proj');
      const second = openUsageSpool(dir, logger);
      assert.deepEqual(second.recovered.map((r) => r.record), [record(3), record(4)]);
      second.ack(second.recovered.map((r) => r.segment));
      second.close();
      assert.deepEqual(readdirSync(dir), [], 'nothing left once delivered and closed');
      const third = openUsageSpool(dir, logger);
      assert.deepEqual(third.recovered, []);
      third.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('GATEWAY_PROCESSES changed between runs: the records of a directory no process uses any more are delivered', () => {
    const base = mkdtempSync(path.join(tmpdir(), 'spool-'));
    const open = (place: { process: number; processes: number } | undefined) => {
      const layout = spoolLayout(base, readdirSync(base), place);
      return openUsageSpool(layout.dir, logger, layout.adopt);
    };
    try {
      // A single process leaves two records in the directory itself.
      const single = open(undefined);
      single.append(record(1));
      single.append(record(2));
      // Three processes; process 3 is killed with one record undelivered.
      const [p1, p2, p3] = [1, 2, 3].map((process) => open({ process, processes: 3 }));
      assert.deepEqual(p1!.recovered.map((r) => r.record), [record(1), record(2)], 'process 1 takes over the single process\'s spool');
      assert.deepEqual(p2!.recovered, []);
      p3!.append(record(3));
      // Two processes now: process 3's directory is nobody's, process 1 delivers it.
      const q1 = open({ process: 1, processes: 2 });
      assert.deepEqual(q1.recovered.map((r) => r.record), [record(1), record(2), record(3)]);
      const q2 = open({ process: 2, processes: 2 });
      assert.deepEqual(q2.recovered, []);
      q2.append(record(4));
      // Back to one process: it delivers what process 2 left.
      const back = open(undefined);
      assert.deepEqual(back.recovered.map((r) => r.record), [record(1), record(2), record(3), record(4)]);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
