/**
 * Delivery of usage records when the ledger is away: the gateway buffers and retries (at least
 * once), the ledger skips request ids it already has (so nothing is counted twice), and a full
 * buffer drops records visibly (a metric and one log line).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createGatewayMetrics } from '../../gateway/src/metrics.js';
import { createLogger } from '../../lib/logging/logger.js';
import { captureLogs } from '../helpers/log-capture.js';
import { loadLedgerConfig } from '../../services/ledger/src/config.js';
import { startLedgerService } from '../../services/ledger/src/start.js';
import { createUsageRecorder } from '../../gateway/src/usage/recorder.js';
import { startPlatform, waitFor, type Platform } from '../helpers/platform.js';
import { sseRequest } from '../helpers/sse-client.js';
import { unthrottledTiers } from '../helpers/tiers.js';

const ask = { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 };

describe('usage delivery while the ledger is down', () => {
  it('ledger down then up under traffic: no record lost, none duplicated', async () => {
    const tiers = unthrottledTiers();
    const platform = await startPlatform({
      gatewayEnv: { TIERS_FILE: tiers, GATEWAY_USAGE_FLUSH_MS: '20' },
      quotaEnv: { TIERS_FILE: tiers },
    });
    try {
      const ids: string[] = [];
      let stop = false;
      const traffic = async (): Promise<void> => {
        while (!stop) {
          const r = await sseRequest({ port: platform.gateway.port, path: '/demo/chat/v1/chat/completions', key: platform.demoKey, body: ask });
          assert.equal(r.status, 200, r.body);
          ids.push(String(r.headers['x-request-id']));
        }
      };
      const clients = [traffic(), traffic(), traffic()];
      await waitFor(() => ids.length >= 30, 10_000, 'traffic before the outage');
      await platform.ledger.stop();
      const downAt = ids.length;
      await waitFor(() => ids.length >= downAt + 60, 15_000, 'traffic during the outage');
      const buffered = platform.gateway.usagePending();
      platform.ledger = await startLedgerService(loadLedgerConfig(platform.ledgerEnv), { logger: createLogger('ledger', 'silent') });
      const upAt = ids.length;
      await waitFor(() => ids.length >= upAt + 30, 15_000, 'traffic after the outage');
      stop = true;
      await Promise.all(clients);
      await waitFor(() => platform.gateway.usagePending() === 0, 15_000, 'buffer drained');
      console.log(`# ${ids.length} requests; ${upAt - downAt} during the outage; ${buffered} buffered when the ledger came back`);
      assert.ok(buffered > 0, 'records waited in the gateway during the outage');

      const stored = await storedIds(platform);
      assert.equal(new Set(stored).size, stored.length, 'no duplicates');
      assert.equal(stored.length, ids.length, 'one record per request');
      assert.deepEqual([...stored].sort(), [...ids].sort());
      const logs = platform.logs.lines.filter((l) => l.includes('usage ledger unreachable'));
      assert.equal(logs.length, 1, 'one log line per outage');
      assert.equal(platform.logs.lines.filter((l) => l.includes('usage ledger reachable again')).length, 1);
    } finally {
      await platform.stop();
    }
  });

  it('a full buffer drops new records, counts them and says so once', async () => {
    const logs = captureLogs();
    const metrics = createGatewayMetrics({ defaultMetrics: false });
    // Nothing listens on port 1: every call fails at once.
    const recorder = createUsageRecorder({
      address: '127.0.0.1:1',
      logger: createLogger('gateway', 'info', logs.stream),
      registry: metrics.registry,
      flushMs: 10,
      batchMax: 2,
      bufferMax: 5,
      timeoutMs: 500,
      closeTimeoutMs: 200,
    });
    const record = (i: number) => ({
      requestId: `req_${i}`,
      projectId: 'proj_a',
      endpoint: 'chat',
      keyId: 'key_a',
      model: 'm',
      workerId: '',
      hardwarePool: 'cpu',
      tier: 'cpu_standard',
      httpStatus: 200,
      errorCode: '',
      promptTokens: 1,
      completionTokens: 1,
      cachedTokens: 0,
      timeToFirstTokenMs: 1,
      durationMs: 1,
      startTime: new Date(),
      cancelled: false,
    });
    for (let i = 0; i < 8; i++) recorder.add(record(i));
    assert.equal(recorder.pending(), 5);
    const text = await metrics.registry.metrics();
    assert.match(text, /usage_records_dropped_total\{service="gateway"\} 3/);
    assert.match(text, /usage_records_pending\{service="gateway"\} 5/);
    await recorder.close();
    const after = await metrics.registry.metrics();
    assert.match(after, /usage_records_dropped_total\{service="gateway"\} 8/, 'undeliverable at shutdown: counted too');
    const lines = logs.lines.join('\n');
    assert.equal(logs.lines.filter((l) => l.includes('usage buffer full')).length, 1);
    assert.equal(logs.lines.filter((l) => l.includes('not delivered before shutdown')).length, 1);
    assert.doesNotMatch(lines, /"stack"/, 'no stack traces in the log lines');
  });
});

/** Every record id of the demo project, read back through the gateway's usage route. */
async function storedIds(platform: Platform): Promise<string[]> {
  const ids: string[] = [];
  let after = '';
  for (;;) {
    const res = await fetch(
      `http://127.0.0.1:${platform.gateway.port}/demo/v1/usage/records?start_time=0&limit=1000${after ? `&after=${after}` : ''}`,
      { headers: { authorization: `Bearer ${platform.demoKey}` } },
    );
    assert.equal(res.status, 200);
    const body = (await res.json()) as { data: Array<{ id: string }>; has_more: boolean; last_id: string };
    ids.push(...body.data.map((r) => r.id));
    if (!body.has_more) return ids;
    after = body.last_id;
  }
}
