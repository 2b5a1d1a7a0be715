/**
 * Sustained traffic keeps the gateway → worker connection healthy (regression: finished
 * Generate calls were cancelled, each cancel an HTTP/2 RST_STREAM; past Node's rapid-reset
 * allowance the worker closed the connection and requests failed while it reconnected).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startPlatform } from '../helpers/platform.js';
import { rawRequest } from '../helpers/raw-request.js';
import { unthrottledTiers } from '../helpers/tiers.js';

describe('sustained traffic', () => {
  it('1,500 requests (streaming and not) without a single failure or lost worker connection', async () => {
    const tiers = unthrottledTiers();
    const platform = await startPlatform({
      workerEnv: { INFERENCE_CAPACITY: '64', INFERENCE_QUEUE_CAPACITY: '64' },
      gatewayEnv: { TIERS_FILE: tiers },
      quotaEnv: { TIERS_FILE: tiers },
    });
    try {
      const statuses = new Map<number, number>();
      let next = 0;
      const started = performance.now();
      const client = async (): Promise<void> => {
        while (next < 1500) {
          const i = next++;
          const r = await rawRequest(platform.gateway.port, undefined, '/demo/chat/v1/chat/completions', platform.demoKey, {
            model: 'm',
            messages: [{ role: 'user', content: 'hi' }],
            max_tokens: 4,
            stream: i % 2 === 0,
          });
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        }
      };
      await Promise.all(Array.from({ length: 8 }, client));
      const seconds = (performance.now() - started) / 1000;
      console.log(`# sustained: 1500 requests in ${seconds.toFixed(1)} s (${(1500 / seconds).toFixed(0)} req/s in-process), statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
      assert.deepEqual(Object.fromEntries(statuses), { 200: 1500 });
      const lost = platform.logs.lines.filter((l) => l.includes('worker status stream lost'));
      assert.deepEqual(lost, [], 'the worker connection never dropped');
    } finally {
      await platform.stop();
    }
  });
});
