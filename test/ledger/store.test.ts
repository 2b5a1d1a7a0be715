/** The ledger store on SQLite and PostgreSQL: idempotent writes, grouped reads, paging, retention. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openLedgerStore } from '../../services/ledger/src/stores/kysely-store.js';
import type { LedgerStore } from '../../services/ledger/src/stores/store.js';
import { createLogger } from '../../lib/logging/logger.js';
import { openAuthStore } from '../../services/auth/src/stores/kysely-store.js';
import { PG_TEST_URL, STORE_KINDS, createPgSchema, openTestLedgerStore, row, withPgClient, type TestLedgerStore } from './helpers.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1, 10, 30);
const all = { from: 0, to: Date.UTC(2100, 0, 1), limit: 100 };

for (const kind of STORE_KINDS) {
  describe(`ledger store (${kind})`, () => {
    let t: TestLedgerStore;
    let store: LedgerStore;
    before(async () => {
      t = await openTestLedgerStore(kind);
      store = t.store;
    });
    after(async () => {
      await t?.cleanup();
    });

    it('stores a request id once however often it is written', async () => {
      const batch = [row('req_dup_1'), row('req_dup_2'), row('req_dup_2')];
      assert.equal(await store.insert(batch), 2);
      assert.equal(await store.insert(batch), 0);
      assert.equal(await store.insert([row('req_dup_1', { promptTokens: 999 }), row('req_dup_3')]), 1);
      const page = await store.records({ projectId: 'proj_a', ...all });
      assert.deepEqual(page?.records.map((r) => r.requestId), ['req_dup_1', 'req_dup_2', 'req_dup_3']);
      assert.equal(page?.records[0]?.promptTokens, 10, 'the first write wins');
      assert.deepEqual(page?.records[0], row('req_dup_1'), 'every field round-trips');
    });

    it('groups by hour, day, key, endpoint and model, and pages each', async () => {
      const p = 'proj_group';
      await store.insert([
        row('g1', { projectId: p, startedAt: T0, keyId: 'key_a', endpoint: 'chat', model: 'm1', promptTokens: 1, completionTokens: 2 }),
        row('g2', { projectId: p, startedAt: T0 + 10 * 60_000, keyId: 'key_b', endpoint: 'chat', model: 'm2', promptTokens: 3, completionTokens: 4, httpStatus: 429, errorCode: 'rate_limit_exceeded' }),
        row('g3', { projectId: p, startedAt: T0 + HOUR, keyId: 'key_a', endpoint: 'code', model: 'm1', promptTokens: 5, completionTokens: 6, cancelled: true, httpStatus: 499 }),
        row('g4', { projectId: p, startedAt: T0 + 24 * HOUR, keyId: 'key_c', endpoint: 'code', model: 'm1', promptTokens: 7, completionTokens: 8, cachedTokens: 2 }),
        row('other', { projectId: 'proj_other', startedAt: T0 }),
      ]);
      const q = { projectId: p, ...all };
      const hours = await store.usage({ ...q, groupBy: 'hour' });
      assert.deepEqual(
        hours.buckets.map((b) => [b.group, b.requests, b.errors, b.cancelled, b.promptTokens, b.completionTokens]),
        [
          [String(Date.UTC(2026, 0, 1, 10) / 1000), 2, 1, 0, 4, 6],
          [String(Date.UTC(2026, 0, 1, 11) / 1000), 1, 0, 1, 5, 6],
          [String(Date.UTC(2026, 0, 2, 10) / 1000), 1, 0, 0, 7, 8],
        ],
      );
      const days = await store.usage({ ...q, groupBy: 'day' });
      assert.deepEqual(days.buckets.map((b) => [b.group, b.requests, b.cachedTokens]), [
        [String(Date.UTC(2026, 0, 1) / 1000), 3, 0],
        [String(Date.UTC(2026, 0, 2) / 1000), 1, 2],
      ]);
      const keys = await store.usage({ ...q, groupBy: 'key' });
      assert.deepEqual(keys.buckets.map((b) => [b.group, b.requests, b.promptTokens]), [['key_a', 2, 6], ['key_b', 1, 3], ['key_c', 1, 7]]);
      const endpoints = await store.usage({ ...q, groupBy: 'endpoint' });
      assert.deepEqual(endpoints.buckets.map((b) => [b.group, b.requests]), [['chat', 2], ['code', 2]]);
      const models = await store.usage({ ...q, groupBy: 'model' });
      assert.deepEqual(models.buckets.map((b) => [b.group, b.requests]), [['m1', 3], ['m2', 1]]);

      // Paging: one bucket per page, following the cursor, sees every bucket once.
      for (const groupBy of ['hour', 'key'] as const) {
        const seen: string[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await store.usage({ ...q, limit: 1, after, groupBy });
          seen.push(...page.buckets.map((b) => b.group));
          if (!page.hasMore) break;
          after = page.buckets.at(-1)?.group;
        }
        const full = (await store.usage({ ...q, groupBy })).buckets.map((b) => b.group);
        assert.deepEqual(seen, full, `${groupBy} paging`);
      }
      // The time range is [from, to).
      const window = await store.usage({ ...q, from: T0 + 10 * 60_000, to: T0 + HOUR, groupBy: 'key' });
      assert.deepEqual(window.buckets.map((b) => b.group), ['key_b']);
    });

    it('pages raw records by (start time, request id) and refuses a cursor of another project', async () => {
      const p = 'proj_page';
      await store.insert(Array.from({ length: 7 }, (_, i) => row(`p${i}`, { projectId: p, startedAt: T0 + Math.floor(i / 2) * 1000 })));
      const ids: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await store.records({ projectId: p, ...all, limit: 3, after });
        assert.ok(page);
        ids.push(...page.records.map((r) => r.requestId));
        if (!page.hasMore) break;
        after = page.records.at(-1)?.requestId;
      }
      assert.deepEqual(ids, ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
      assert.equal(await store.records({ projectId: 'proj_other', ...all, after: 'p3' }), undefined);
    });

    it('grouped reads over any range equal the sums of the raw records, however often batches are re-sent', async () => {
      // Whole days and hours come from the rollups, the partial hours at the edges from the raw
      // rows: an oracle over the raw rows checks every grouping on ranges that do and do not align.
      const p = 'proj_rollup';
      let seed = 7;
      const rand = (n: number): number => {
        seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
        return seed % n;
      };
      const rows = Array.from({ length: 400 }, (_, i) =>
        row(`ru${i}`, {
          projectId: p,
          startedAt: T0 + rand(30 * HOUR),
          keyId: `key_${rand(3)}`,
          endpoint: `ep${rand(2)}`,
          model: `m${rand(2)}`,
          httpStatus: rand(5) === 0 ? 429 : 200,
          errorCode: rand(7) === 0 ? 'stream_interrupted' : '',
          cancelled: rand(9) === 0,
          promptTokens: rand(100),
          completionTokens: rand(100),
          cachedTokens: rand(10),
        }),
      );
      assert.equal(await store.insert(rows.slice(0, 250)), 250);
      assert.equal(await store.insert(rows), 150, 'only the new rows count');
      assert.equal(await store.insert(rows.slice(100, 300)), 0);
      if (kind === 'postgres') {
        // Each rollup holds each request once: re-sent rows added nothing.
        for (const table of ['usage_hourly', 'usage_daily']) {
          const summed = await withPgClient((c) =>
            c.query<{ n: string }>(`SELECT sum(requests) AS n FROM ${t.env['LEDGER_DATABASE_SCHEMA']}.${table} WHERE project_id = $1`, [p]),
          );
          assert.equal(Number(summed.rows[0]?.n), 400, table);
        }
      }
      const groupOf = (r: (typeof rows)[number], groupBy: string): string => {
        if (groupBy === 'hour') return String((r.startedAt - (r.startedAt % HOUR)) / 1000);
        if (groupBy === 'day') return String((r.startedAt - (r.startedAt % (24 * HOUR))) / 1000);
        return groupBy === 'key' ? r.keyId : groupBy === 'endpoint' ? r.endpoint : r.model;
      };
      const ranges: Array<[number, number]> = [
        [0, Date.UTC(2100, 0, 1)],
        [Date.UTC(2026, 0, 1, 12), Date.UTC(2026, 0, 2, 3)],
        [T0 + 1234, T0 + 17 * HOUR + 999],
        [T0 + 5 * 60_000, T0 + 40 * 60_000],
        // Raw edges, whole hours of 1 January and 3 January, the whole of 2 January from the daily rollup.
        [T0 - 5 * HOUR + 1234, T0 + 40 * HOUR + 777],
      ];
      for (const [from, to] of ranges) {
        for (const groupBy of ['hour', 'day', 'key', 'endpoint', 'model'] as const) {
          const expected = new Map<string, number[]>();
          for (const r of rows.filter((x) => x.startedAt >= from && x.startedAt < to)) {
            const g = groupOf(r, groupBy);
            const e = expected.get(g) ?? [0, 0, 0, 0, 0, 0];
            const error = !r.cancelled && (r.errorCode !== '' || r.httpStatus >= 400);
            expected.set(g, [e[0]! + 1, e[1]! + (error ? 1 : 0), e[2]! + (r.cancelled ? 1 : 0), e[3]! + r.promptTokens, e[4]! + r.completionTokens, e[5]! + r.cachedTokens]);
          }
          const want = [...expected.entries()].sort(([a], [b]) => (groupBy === 'hour' || groupBy === 'day' ? Number(a) - Number(b) : a < b ? -1 : 1));
          const got = await store.usage({ projectId: p, from, to, limit: 1000, groupBy });
          assert.deepEqual(
            got.buckets.map((b) => [b.group, [b.requests, b.errors, b.cancelled, b.promptTokens, b.completionTokens, b.cachedTokens]]),
            want,
            `${groupBy} over [${from}, ${to})`,
          );
        }
      }
    });

    it('retention deletes only records older than the cutoff, in bounded batches', async () => {
      const p = 'proj_retention';
      await store.insert(Array.from({ length: 25 }, (_, i) => row(`old${i}`, { projectId: p, startedAt: 1_000 + i })));
      await store.insert([row('new', { projectId: p, startedAt: 5_000 })]);
      assert.equal(await store.deleteBefore(2_000, 10), 25);
      const left = await store.records({ projectId: p, ...all });
      assert.deepEqual(left?.records.map((r) => r.requestId), ['new']);
    });
  });
}

describe('ledger store on PostgreSQL next to the auth tables', () => {
  it('migrates in a schema the auth service already migrated (own bookkeeping tables), and only once', async () => {
    const s = await createPgSchema();
    try {
      const logger = createLogger('ledger', 'silent');
      const location = { dialect: 'postgres' as const, url: PG_TEST_URL, schema: s.schema };
      const auth = await openAuthStore(location, logger);
      await auth.close();
      const a = await openLedgerStore(location, logger);
      await a.insert([row('x')]);
      await a.close();
      const b = await openLedgerStore(location, logger);
      assert.equal((await b.records({ projectId: 'proj_a', ...all }))?.records.length, 1);
      await b.close();
    } finally {
      await s.drop();
    }
  });
});
