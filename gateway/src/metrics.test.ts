import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { metricTypes, sampleValue } from '../../test/helpers/exposition.js';
import { createGatewayMetrics, recordBreakerState, recordTokens } from './metrics.js';

const quiet = { defaultMetrics: false };

describe('gateway metrics', () => {
  it('registers only what the gateway produces, labelled service="gateway"', async () => {
    const m = createGatewayMetrics(quiet);
    m.httpRequestsTotal.inc({ route: '/healthz', status: '200' });
    const text = await m.registry.metrics();
    assert.deepEqual(Object.fromEntries(metricTypes(text)), {
      http_requests_total: 'counter',
      http_request_duration_seconds: 'histogram',
      time_to_first_token_seconds: 'histogram',
      tokens_total: 'counter',
      breaker_state: 'gauge',
      quota_admissions_total: 'counter',
      breaker_transitions_total: 'counter',
    });
    assert.equal(sampleValue(text, 'http_requests_total', { route: '/healthz', status: '200', service: 'gateway' }), 1);
  });

  it('time_to_first_token_seconds observes per pool', async () => {
    const m = createGatewayMetrics(quiet);
    m.timeToFirstToken.observe({ pool: 'cpu' }, 0.3);
    m.timeToFirstToken.observe({ pool: 'gpu-nvidia' }, 0.02);
    const text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'time_to_first_token_seconds_count', { pool: 'cpu' }), 1);
    assert.equal(sampleValue(text, 'time_to_first_token_seconds_bucket', { pool: 'gpu-nvidia', le: '0.025' }), 1);
    assert.equal(sampleValue(text, 'time_to_first_token_seconds_bucket', { pool: 'cpu', le: '0.25' }), 0);
  });

  it('recordTokens counts prompt tokens as in and completion tokens as out', async () => {
    const m = createGatewayMetrics(quiet);
    recordTokens(m, { promptTokens: 12, completionTokens: 30 });
    recordTokens(m, { promptTokens: 8, completionTokens: 0 });
    const text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'tokens_total', { direction: 'in' }), 20);
    assert.equal(sampleValue(text, 'tokens_total', { direction: 'out' }), 30);
  });

  it('recordBreakerState maps states to 0 / 0.5 / 1 and counts transitions', async () => {
    const m = createGatewayMetrics(quiet);
    const target = 'inference:cpu@inference-cpu:50061';
    const stateAfter = async (state: 'open' | 'half-open' | 'closed') => {
      recordBreakerState(m, target, state);
      return sampleValue(await m.registry.metrics(), 'breaker_state', { target });
    };
    assert.equal(await stateAfter('open'), 1);
    assert.equal(await stateAfter('half-open'), 0.5);
    assert.equal(await stateAfter('closed'), 0);
    await stateAfter('open');
    const text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'breaker_transitions_total', { target, state: 'open' }), 2);
    assert.equal(sampleValue(text, 'breaker_transitions_total', { target, state: 'half-open' }), 1);
    assert.equal(sampleValue(text, 'breaker_transitions_total', { target, state: 'closed' }), 1);
  });
});
