/**
 * Auth's and the ledger's health follow PostgreSQL: both services reach the database through a
 * TCP relay this test can cut. While it is cut their gRPC health reports NOT_SERVING (what the
 * compose health check probes); once it is back, SERVING again.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { probeGrpc } from '../../docker/health-probe.js';
import { AuthServiceDefinition } from '../../gen/xerotier/auth/v1/auth_service.js';
import { LedgerServiceDefinition } from '../../gen/xerotier/ledger/v1/ledger_service.js';
import { createLogger } from '../../lib/logging/logger.js';
import { loadAuthConfig } from '../../services/auth/src/config.js';
import { startAuthService } from '../../services/auth/src/start.js';
import { loadLedgerConfig } from '../../services/ledger/src/config.js';
import { startLedgerService } from '../../services/ledger/src/start.js';
import { freePort } from '../helpers/child-worker.js';
import { pgRelay } from '../helpers/pg-relay.js';
import { createPgSchema, PG_TEST_URL } from './helpers.js';

async function waitForHealth(address: string, service: string, healthy: boolean, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const result = await probeGrpc(address, service, 2_000);
    if (result.healthy === healthy) return Date.now() - started;
    assert.ok(Date.now() - started < timeoutMs, `${service} ${healthy ? 'SERVING' : 'NOT_SERVING'} within ${timeoutMs} ms: ${result.detail}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('health follows PostgreSQL', () => {
  it('auth and the ledger report NOT_SERVING while their database is unreachable, SERVING once it is back', { timeout: 120_000 }, async () => {
    const schema = await createPgSchema();
    const port = await freePort();
    const relay = pgRelay(port, new URL(PG_TEST_URL));
    await relay.open();
    const url = new URL(PG_TEST_URL);
    url.host = `127.0.0.1:${port}`;
    const logger = createLogger('test', 'silent');
    const auth = await startAuthService(
      loadAuthConfig({ AUTH_PORT: '0', AUTH_DATABASE_URL: url.toString(), AUTH_DATABASE_SCHEMA: schema.schema, AUTH_SEED_DEMO: 'false' }),
      { logger, storeHealthIntervalMs: 200 },
    );
    const ledger = await startLedgerService(
      loadLedgerConfig({ LEDGER_PORT: '0', LEDGER_DATABASE_URL: url.toString(), LEDGER_DATABASE_SCHEMA: schema.schema, LEDGER_RETENTION_DAYS: '0' }),
      { logger, storeHealthIntervalMs: 200 },
    );
    const targets = [
      [`127.0.0.1:${auth.port}`, AuthServiceDefinition.fullName],
      [`127.0.0.1:${ledger.port}`, LedgerServiceDefinition.fullName],
    ] as const;
    try {
      for (const [address, service] of targets) await waitForHealth(address, service, true, 5_000);
      await relay.cut();
      for (const [address, service] of targets) {
        const ms = await waitForHealth(address, service, false, 15_000);
        console.log(`# ${service}: NOT_SERVING ${ms} ms after the database went away`);
      }
      await relay.open();
      for (const [address, service] of targets) {
        const ms = await waitForHealth(address, service, true, 15_000);
        console.log(`# ${service}: SERVING again ${ms} ms after the database came back`);
      }
    } finally {
      await ledger.stop();
      await auth.stop();
      await relay.cut();
      await schema.drop();
    }
  });
});
