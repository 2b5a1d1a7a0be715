/**
 * A PostgreSQL connection lost under a service must fail only what used it: a query in flight
 * when the database goes away rejects (its caller reports it), an idle pooled connection is
 * dropped, nothing escapes as an uncaught exception (which would end the process), and the pool
 * serves again once the database is back.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import { openPostgres } from '../../lib/db/kysely.js';
import { createLogger } from '../../lib/logging/logger.js';
import { freePort } from '../helpers/child-worker.js';
import { pgRelay } from '../helpers/pg-relay.js';
import { PG_TEST_URL } from './helpers.js';

describe('PostgreSQL connection lost', () => {
  it('a query in flight rejects, idle connections are dropped, nothing is uncaught, the pool recovers', async () => {
    const port = await freePort();
    const relay = pgRelay(port, new URL(PG_TEST_URL));
    await relay.open();
    const url = new URL(PG_TEST_URL);
    url.host = `127.0.0.1:${port}`;
    const db = openPostgres<unknown>({ dialect: 'postgres', url: url.toString(), poolSize: 2 }, createLogger('test', 'silent'));
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): void => void uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      // Two connections: one stays idle in the pool, one runs a long query.
      await Promise.all([sql`SELECT 1`.execute(db), sql`SELECT 1`.execute(db)]);
      const inFlight = sql`SELECT pg_sleep(5)`.execute(db);
      const outcome = inFlight.then(
        () => 'resolved',
        (err: unknown) => (err instanceof Error ? err.message : String(err)),
      );
      await new Promise((r) => setTimeout(r, 300));
      await relay.cut();
      assert.match(await outcome, /terminated|ECONNRESET/i, 'the query in flight failed');
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(uncaught, [], 'no uncaught exception');

      await relay.open();
      const { rows } = await sql<{ one: number }>`SELECT 1 AS one`.execute(db);
      assert.equal(rows[0]?.one, 1, 'the pool serves again');
    } finally {
      process.off('uncaughtException', onUncaught);
      await db.destroy().catch(() => undefined);
      await relay.cut();
    }
  });
});
