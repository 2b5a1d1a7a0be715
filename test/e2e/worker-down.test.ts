/**
 * Killing the inference process: the next request fails fast with a 503 in the OpenAI envelope
 * (not a hang, not a 500), and the platform serves again once a worker is back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI, { APIError } from 'openai';
import { startChildWorker, type ChildWorker } from '../helpers/child-worker.js';
import { startPlatform, type Platform } from '../helpers/platform.js';

describe('inference worker killed', () => {
  let platform: Platform;
  let worker: ChildWorker;
  before(async () => {
    worker = await startChildWorker({ SIM_TOKENS_PER_SECOND: '0', SIM_TTFT_MS: '0' });
    platform = await startPlatform({ engines: [], externalWorkers: [`cpu=127.0.0.1:${worker.port}`] });
  });
  after(async () => {
    await worker.kill();
    await platform.stop();
  });

  it('turns a dead worker into a fast 503 with Retry-After', async () => {
    const client = new OpenAI({ baseURL: platform.baseUrl(), apiKey: platform.demoKey, maxRetries: 0 });
    // Wait until the gateway sees the worker.
    for (let i = 0; i < 100 && !platform.gateway.fleet.workers[0]?.connected; i++) await new Promise((r) => setTimeout(r, 50));
    const ok = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(ok.model, 'simulator');

    await worker.kill('SIGKILL');
    const started = performance.now();
    await assert.rejects(client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }), (err: unknown) => {
      assert.ok(err instanceof APIError);
      assert.equal(err.status, 503);
      assert.equal(err.type, 'service_unavailable');
      assert.match(String(err.code), /no_healthy_worker|upstream_unavailable/);
      const retryAfter = Number(err.headers?.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `retry-after ${retryAfter}`);
      return true;
    });
    const ms = performance.now() - started;
    assert.ok(ms < 5000, `503 took ${ms} ms`);
  });
});
