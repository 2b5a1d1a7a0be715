/**
 * Slow readers: a client that stops reading must stop the generation on
 * the worker through backpressure (SSE 'drain' → the channel's per-call credit, or gRPC flow
 * control on a call of its own), not grow gateway memory.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, it } from 'node:test';
import { AuthServiceDefinition } from '../../gen/xerotier/auth/v1/auth_service.js';
import { callOptions, createAppClient, createGrpcChannel } from '../../lib/grpc/client.js';
import { createSimulatorEngine } from '../../services/inference/src/engines/simulator/simulator-engine.js';
import { SIMULATOR_DEFAULTS, startPlatform, waitFor } from '../helpers/platform.js';
import { unthrottledTiers } from '../helpers/tiers.js';

// Both ways generations reach a worker (GATEWAY_WORKER_CALLS): per-call credit on a shared
// channel, HTTP/2 flow control on a call of its own.
for (const workerCalls of ['channel', 'stream'] as const) describe(`backpressure (GATEWAY_WORKER_CALLS=${workerCalls})`, () => {
  it('a paused reader stalls the worker; resuming continues the stream', async () => {
    let produced = 0;
    const engine = createSimulatorEngine({
      ...SIMULATOR_DEFAULTS,
      contextWindow: 2_000_000,
      tokensPerSecond: 0,
      responseTokens: 1_000_000,
      onToken: () => (produced += 1),
    });
    const tiers = unthrottledTiers();
    const platform = await startPlatform({
      engines: [engine],
      gatewayEnv: { TIERS_FILE: tiers, GATEWAY_WORKER_CALLS: workerCalls },
      quotaEnv: { TIERS_FILE: tiers },
    });
    try {
      // An endpoint with a context large enough that the answer cannot hide in socket buffers (a
      // simulator at full speed has its tokens ready together: they travel up to 64 to a message,
      // ~10 bytes of SSE per token).
      const channel = createGrpcChannel(`127.0.0.1:${platform.authPort}`);
      const admin = createAppClient(AuthServiceDefinition, channel, { address: '', target: 'auth' });
      await admin.createEndpoint(
        { project: 'demo', slug: 'big', tier: 'cpu_standard', model: 'simulator', hardwarePool: 'cpu', contextWindow: 2_000_000 },
        callOptions('t'),
      );
      channel.close();
      let received = 0;
      const req = request({
        host: '127.0.0.1',
        port: platform.gateway.port,
        path: '/demo/big/v1/chat/completions',
        method: 'POST',
        headers: { authorization: `Bearer ${platform.demoKey}`, 'content-type': 'application/json' },
      });
      req.on('error', () => undefined);
      const response = new Promise<import('node:http').IncomingMessage>((resolve) => req.on('response', resolve));
      req.end(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true, max_tokens: 1_000_000 }));
      const res = await response;
      assert.equal(res.statusCode, 200);
      res.pause();
      await waitFor(() => produced > 0, 2000, 'generation started');
      // Loopback socket buffers take a few MB before the gateway sees backpressure: wait until
      // production stops (bounded), then check it stays stopped.
      let last = -1;
      for (let i = 0; i < 30 && produced !== last; i++) {
        last = produced;
        await new Promise((r) => setTimeout(r, 500));
      }
      const p1 = produced;
      const rss1 = process.memoryUsage().rss;
      await new Promise((r) => setTimeout(r, 1000));
      const p2 = produced;
      const rssDelta = (process.memoryUsage().rss - rss1) / 1e6;
      assert.ok(p1 < 1_000_000, 'the worker did not run to completion while the client was paused');
      assert.ok(p2 - p1 <= 5, 'the worker is held by flow control while the client does not read');
      res.on('data', (chunk: Buffer) => (received += chunk.length));
      res.resume();
      await new Promise<void>((resolve) => res.on('end', () => resolve()));
      assert.ok(received > 0);
      console.log(
        `# paused reader: worker stalled after ${p1} tokens (~${((p1 * received) / produced / 1e6).toFixed(1)} MB of SSE in socket buffers), ` +
          `${p2 - p1} more in the next second (rss Δ ${rssDelta.toFixed(1)} MB)`,
      );
      assert.equal(produced, 1_000_000, 'the whole answer arrives once the client reads');
    } finally {
      await platform.stop();
    }
  });
});
