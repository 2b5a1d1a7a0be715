/**
 * Mass cancellation: many streams opened and abandoned on the same
 * gateway → worker connection must not take down the long streams sharing it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSimulatorEngine } from '../../services/inference/src/engines/simulator/simulator-engine.js';
import { SIMULATOR_DEFAULTS, startPlatform } from '../helpers/platform.js';
import { sseRequest } from '../helpers/sse-client.js';
import { unthrottledTiers } from '../helpers/tiers.js';

// Both ways generations reach a worker (GATEWAY_WORKER_CALLS): cancels as messages on one
// channel, or as RST_STREAMs of calls sharing one HTTP/2 connection.
for (const workerCalls of ['channel', 'stream'] as const) describe(`mass cancel (GATEWAY_WORKER_CALLS=${workerCalls})`, () => {
  it('1,500 streams cancelled after their first token: 0 of 50 long streams fail', async () => {
    const engine = createSimulatorEngine({ ...SIMULATOR_DEFAULTS, tokensPerSecond: 20, responseTokens: 60 });
    const tiers = unthrottledTiers();
    const platform = await startPlatform({
      engines: [engine],
      workerEnv: { INFERENCE_CAPACITY: '4000', INFERENCE_QUEUE_CAPACITY: '0' },
      gatewayEnv: { TIERS_FILE: tiers, GATEWAY_WORKER_CALLS: workerCalls },
      quotaEnv: { TIERS_FILE: tiers },
    });
    try {
      const body = { model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true };
      const open = (cancelAtFirst: boolean) =>
        sseRequest({
          port: platform.gateway.port,
          path: '/demo/chat/v1/chat/completions',
          key: platform.demoKey,
          body,
          ...(cancelAtFirst ? { onEvent: () => true } : {}),
        });
      const survivors = Array.from({ length: 50 }, () => open(false));
      await new Promise((r) => setTimeout(r, 300));
      const started = performance.now();
      // In waves of 250 at once: a single burst of 1,500 new sockets overflows the listen backlog of
      // a busy 2-core machine (a client-side ECONNRESET that says nothing about the gateway).
      for (let wave = 0; wave < 6; wave++) await Promise.all(Array.from({ length: 250 }, () => open(true)));
      const seconds = (performance.now() - started) / 1000;
      const results = await Promise.all(survivors);
      const failed = results.filter((r) => r.ending !== 'done');
      const lost = platform.logs.lines.filter((l) => l.includes('worker status stream lost')).length;
      console.log(`# mass cancel: 1500 cancelled in ${seconds.toFixed(1)} s; ${failed.length}/50 long streams failed; worker status stream drops ${lost}`);
      assert.equal(failed.length, 0);
    } finally {
      await platform.stop();
    }
  });
});
