/**
 * Metrics after real traffic: every process serves Prometheus `GET /metrics`, and the
 * series that operators alert on move with the requests that were made.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import OpenAI from 'openai';
import { sampleValue } from '../helpers/exposition.js';
import { startPlatform } from '../helpers/platform.js';

const scrape = async (port: number | undefined): Promise<string> => {
  assert.ok(port, 'metrics port');
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  return res.text();
};

describe('metrics', () => {
  it('every process exposes metrics that reflect real traffic', async () => {
    const platform = await startPlatform({
      gatewayEnv: { GATEWAY_METRICS_PORT: '0' },
      workerEnv: { INFERENCE_METRICS_PORT: '0' },
      authEnv: { AUTH_METRICS_PORT: '0' },
      quotaEnv: { QUOTA_METRICS_PORT: '0' },
    });
    try {
      const client = new OpenAI({ baseURL: platform.baseUrl(), apiKey: platform.demoKey, maxRetries: 0 });
      for (let i = 0; i < 3; i++) await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
      const stream = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true });
      for await (const _ of stream) void _;
      const bad = new OpenAI({ baseURL: platform.baseUrl(), apiKey: 'xero_demo_bad', maxRetries: 0 });
      await bad.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }).catch(() => undefined);

      const gw = await scrape(platform.gateway.metricsPort);
      const route = '/:project/:endpoint/v1/chat/completions';
      assert.equal(sampleValue(gw, 'http_requests_total', { route, status: '200' }), 4);
      assert.equal(sampleValue(gw, 'http_requests_total', { route, status: '401' }), 1);
      assert.equal(sampleValue(gw, 'time_to_first_token_seconds_count', { pool: 'cpu' }), 4);
      assert.equal(sampleValue(gw, 'tokens_total', { direction: 'out' }), 4 * 12);
      assert.ok((sampleValue(gw, 'tokens_total', { direction: 'in' }) ?? 0) > 0);
      const breakerTargets = gw.split('\n').filter((l) => l.startsWith('breaker_state{'));
      assert.ok(breakerTargets.length >= 3, 'auth, quota and each worker have a breaker gauge');
      assert.ok(breakerTargets.every((l) => l.endsWith(' 0')), 'all closed');

      const worker = await scrape(platform.workers[0]!.metricsPort);
      assert.equal(sampleValue(worker, 'tokens_total', { direction: 'out' }), 4 * 12);
      assert.equal(sampleValue(worker, 'time_to_first_token_seconds_count', { pool: 'cpu' }), 4);
      assert.equal(sampleValue(worker, 'worker_in_flight', { worker: platform.workers[0]!.workerId }), 0);
      assert.ok((sampleValue(worker, 'grpc_server_handled_total', { method: '/xerotier.inference.v1.InferenceService/Generate', code: 'OK' }) ?? 0) >= 4);

      const quota = await scrape(platform.metricsPorts.quota);
      assert.equal(sampleValue(quota, 'quota_decisions_total', { decision: 'allow', tier: 'cpu_standard' }), 4);

      const auth = await scrape(platform.metricsPorts.auth);
      assert.ok((sampleValue(auth, 'grpc_server_handled_total', { method: '/xerotier.auth.v1.AuthService/Authenticate', code: 'OK' }) ?? 0) >= 1);
      assert.equal(sampleValue(auth, 'grpc_server_handled_total', { method: '/xerotier.auth.v1.AuthService/Authenticate', code: 'UNAUTHENTICATED' }), 1);
    } finally {
      await platform.stop();
    }
  });
});
