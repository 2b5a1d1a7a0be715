/**
 * Graceful gateway shutdown: streams that finish within the drain grace end
 * with [DONE]; longer ones get exactly one error event when the grace is over; nothing new is
 * admitted meanwhile.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSimulatorEngine } from '../../services/inference/src/engines/simulator/simulator-engine.js';
import { SIMULATOR_DEFAULTS, startPlatform } from '../helpers/platform.js';
import { rawRequest } from '../helpers/raw-request.js';
import { sseRequest } from '../helpers/sse-client.js';

describe('gateway shutdown', () => {
  it('drains: short streams finish, long ones end with one error event at the grace, new requests are refused', async () => {
    const engine = createSimulatorEngine({ ...SIMULATOR_DEFAULTS, tokensPerSecond: 20, responseTokens: 400 });
    const platform = await startPlatform({ engines: [engine], gatewayEnv: { GATEWAY_DRAIN_GRACE_MS: '1000' } });
    try {
      const body = (maxTokens: number) => ({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true, max_tokens: maxTokens });
      const open = (maxTokens: number) =>
        sseRequest({ port: platform.gateway.port, path: '/demo/chat/v1/chat/completions', key: platform.demoKey, body: body(maxTokens) });
      const short = open(8); // ~0.4 s
      const long = open(400); // ~20 s
      await new Promise((r) => setTimeout(r, 150));
      const stopping = platform.gateway.stop();
      const started = performance.now();
      const late = await rawRequest(platform.gateway.port, undefined, '/demo/chat/v1/models', platform.demoKey, undefined, 'GET').then(
        (r) => r.status,
        () => 'refused',
      );
      assert.ok(late === 'refused' || late === 503, `new request during drain: ${late}`);
      const [s, l] = await Promise.all([short, long]);
      const ms = performance.now() - started;
      await stopping;
      assert.equal(s.ending, 'done', 'a stream shorter than the grace finishes');
      assert.equal(l.ending, 'error-event', 'a longer stream ends with one error event');
      const errors = l.events.filter((e) => (e as { error?: unknown }).error) as Array<{ error: { code: string; message: string } }>;
      assert.equal(errors.length, 1);
      // The stream was ended by the gateway's own shutdown, not by a failing worker: say so.
      assert.equal(errors[0]?.error.code, 'gateway_draining');
      console.log(`# drain: long stream ended ${ms.toFixed(0)} ms after stop (grace 1000 ms)`);
      assert.ok(ms >= 900 && ms < 3000, `${ms} ms`);
    } finally {
      await platform.stop();
    }
  });
});
