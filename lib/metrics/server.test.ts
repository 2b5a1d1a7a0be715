import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Gauge } from 'prom-client';
import { sampleValue } from '../../test/helpers/exposition.js';
import { createRegistry } from './registry.js';
import { startMetricsServer } from './server.js';

describe('startMetricsServer', () => {
  it('serves GET /metrics in Prometheus text format on an ephemeral port', async () => {
    const registry = createRegistry('quota');
    new Counter({ name: 'decisions_total', help: 'decisions', labelNames: ['decision'], registers: [registry] }).inc({ decision: 'deny' });
    const server = await startMetricsServer(registry, '127.0.0.1', 0);
    try {
      assert.ok(server.port > 0);
      const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      assert.equal(sampleValue(text, 'decisions_total', { decision: 'deny', service: 'quota' }), 1);
      assert.ok(sampleValue(text, 'process_resident_memory_bytes', { service: 'quota' }) !== undefined);

      const query = await fetch(`http://127.0.0.1:${server.port}/metrics?x=1`);
      assert.equal(query.status, 200);
      await query.arrayBuffer();
      const other = await fetch(`http://127.0.0.1:${server.port}/`);
      assert.equal(other.status, 404);
      await other.arrayBuffer();
      const post = await fetch(`http://127.0.0.1:${server.port}/metrics`, { method: 'POST' });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get('allow'), 'GET, HEAD');
      await post.arrayBuffer();
    } finally {
      await server.close();
    }
    await assert.rejects(fetch(`http://127.0.0.1:${server.port}/metrics`), 'closed server refuses connections');
  });

  it('answers 500 when a collector throws', async () => {
    const registry = createRegistry('quota', { defaultMetrics: false });
    new Gauge({
      name: 'broken',
      help: 'a collector that fails',
      registers: [registry],
      collect() {
        throw new Error('collector failed');
      },
    });
    const server = await startMetricsServer(registry, '127.0.0.1', 0);
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      assert.equal(res.status, 500);
      assert.equal(await res.text(), 'metrics collection failed\n');
    } finally {
      await server.close();
    }
  });

  it('rejects when the port is taken', async () => {
    const registry = createRegistry('quota', { defaultMetrics: false });
    const first = await startMetricsServer(registry, '127.0.0.1', 0);
    try {
      await assert.rejects(startMetricsServer(registry, '127.0.0.1', first.port), /EADDRINUSE/);
    } finally {
      await first.close();
    }
  });
});
