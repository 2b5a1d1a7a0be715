import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { EventEmitter } from 'node:events';
import { request, type ServerResponse } from 'node:http';
import express from 'express';
import { sampleValue } from '../../test/helpers/exposition.js';
import { createHttpMetrics, httpMetricsMiddleware, routeMeasure } from './http.js';
import { createRegistry } from './registry.js';
import { metricsHandler } from './server.js';

function httpMetrics() {
  const registry = createRegistry('gateway', { defaultMetrics: false });
  return { registry, ...createHttpMetrics(registry) };
}

async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('condition not reached');
}

describe('httpMetricsMiddleware (express)', () => {
  it('labels requests by route template, counts statuses, observes durations, mounts /metrics', async () => {
    const m = httpMetrics();
    const app = express();
    app.use(httpMetricsMiddleware(m, { mounts: ['/:project/:endpoint/v1'] }));
    app.get('/metrics', metricsHandler(m.registry));
    app.get('/healthz', (_req, res) => void res.json({ ok: true }));
    const v1 = express.Router();
    v1.post('/chat/completions', (_req, res) => void res.status(429).json({ error: {} }));
    app.use('/:project/:endpoint/v1', v1);
    const admin = express.Router();
    admin.get('/keys/:id', (_req, res) => void res.json({}));
    app.use('/:project/admin', admin);
    app.get('/stream', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write('data: 1\n\n');
      // Never ends: the client goes away.
    });

    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await (await fetch(`${base}/healthz`)).arrayBuffer();
      await (await fetch(`${base}/healthz`)).arrayBuffer();
      await (await fetch(`${base}/demo/chat/v1/chat/completions`, { method: 'POST' })).arrayBuffer();
      await (await fetch(`${base}/acme/other/v1/chat/completions`, { method: 'POST' })).arrayBuffer();
      await (await fetch(`${base}/demo/admin/keys/k1`)).arrayBuffer();
      await (await fetch(`${base}/other/admin/keys/k2`)).arrayBuffer();
      const missing = await fetch(`${base}/no/such/path`);
      assert.equal(missing.status, 404);
      await missing.arrayBuffer();

      // A client that disconnects mid-stream: counted as 499.
      await new Promise<void>((resolve, reject) => {
        const req = request(`${base}/stream`, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', (err) => (err.message.includes('socket hang up') ? resolve() : reject(err)));
        req.end();
      });
      await until(async () => sampleValue(await m.registry.metrics(), 'http_requests_total', { route: '/stream' }) !== undefined);

      const res = await fetch(`${base}/metrics`);
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.equal(sampleValue(text, 'http_requests_total', { route: '/healthz', status: '200', service: 'gateway' }), 2);
      const chat = '/:project/:endpoint/v1/chat/completions';
      assert.equal(sampleValue(text, 'http_requests_total', { route: chat, status: '429' }), 2, 'template, not raw path');
      assert.equal(sampleValue(text, 'http_requests_total', { route: '*/keys/:id', status: '200' }), 2, 'unknown mount');
      assert.equal(sampleValue(text, 'http_requests_total', { route: 'unmatched', status: '404' }), 1);
      assert.equal(sampleValue(text, 'http_requests_total', { route: '/stream', status: '499' }), 1);
      assert.equal(sampleValue(text, 'http_request_duration_seconds_count', { route: chat }), 2);
      assert.ok((sampleValue(text, 'http_request_duration_seconds_sum', { route: '/healthz' }) ?? -1) >= 0);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('uses a custom route labeller when given', async () => {
    const m = httpMetrics();
    const app = express();
    app.use(httpMetricsMiddleware(m, { routeOf: () => 'all' }));
    app.get('/a', (_req, res) => void res.end());
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    try {
      await (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/a`)).arrayBuffer();
      await until(async () => sampleValue(await m.registry.metrics(), 'http_requests_total', { route: 'all', status: '200' }) === 1);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('routeMeasure (routes dispatched without express)', () => {
  it('routeMeasure counts a request once it closes: its route once set, unmatched before, 499 when cut', async () => {
    const m = httpMetrics();
    const measure = routeMeasure(m);
    const response = (statusCode: number, finished: boolean): ServerResponse =>
      Object.assign(new EventEmitter(), { statusCode, writableFinished: finished }) as unknown as ServerResponse;
    const chat = '/:project/:endpoint/v1/chat/completions';
    for (const [status, finished, routed] of [[200, true, true], [200, true, true], [400, true, false], [200, false, true]] as const) {
      const res = response(status, finished);
      const route = measure(res);
      if (routed) route(chat);
      res.emit('finish');
      res.emit('close');
    }
    const text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'http_requests_total', { route: chat, status: '200' }), 2);
    assert.equal(sampleValue(text, 'http_requests_total', { route: 'unmatched', status: '400' }), 1);
    assert.equal(sampleValue(text, 'http_requests_total', { route: chat, status: '499' }), 1);
    assert.equal(sampleValue(text, 'http_request_duration_seconds_count', { route: chat }), 3);
  });

});
