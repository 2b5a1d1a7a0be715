import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Counter } from 'prom-client';
import { parseExposition, sampleValue } from '../../test/helpers/exposition.js';
import { createRegistry } from './registry.js';

const counter = (registry: ReturnType<typeof createRegistry>) =>
  new Counter({ name: 'things_total', help: 'things', registers: [registry] });

describe('createRegistry', () => {
  it('builds a fresh registry per call (no module-level state)', async () => {
    const a = createRegistry('a', { defaultMetrics: false });
    const b = createRegistry('b', { defaultMetrics: false });
    assert.notEqual(a, b);
    counter(a).inc(2);
    counter(b);
    assert.equal(sampleValue(await a.metrics(), 'things_total'), 2);
    assert.equal(sampleValue(await b.metrics(), 'things_total'), 0);
  });

  it('labels every series, the default process metrics included, with the service', async () => {
    const registry = createRegistry('quota');
    counter(registry).inc();
    const samples = parseExposition(await registry.metrics());
    const cpu = samples.find((s) => s.name === 'process_cpu_user_seconds_total');
    assert.ok(cpu, 'process_cpu_user_seconds_total is exported');
    assert.ok(samples.some((s) => s.name === 'nodejs_eventloop_lag_seconds'));
    for (const sample of samples) assert.equal(sample.labels['service'], 'quota', sample.name);
  });

  it('leaves the default process metrics out on request', async () => {
    const registry = createRegistry('gateway', { defaultMetrics: false });
    assert.equal(await registry.metrics(), '\n');
  });
});
