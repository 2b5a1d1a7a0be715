import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ALL_METRICS,
  createAuthMetrics,
  createGatewayMetrics,
  createInferenceMetrics,
  createMetrics,
  createQuotaMetrics,
  observeBreaker,
  recordBreakerState,
  recordHttpRequest,
  recordQuotaDecision,
  recordTokens,
  recordWorkerLoad,
} from './metrics.js';
import { metricTypes, parseExposition, sampleValue } from './exposition.js';

const quiet = { defaultMetrics: false };

describe('createMetrics', () => {
  it('builds a fresh registry per call (no module-level state)', async () => {
    const a = createMetrics('a', quiet);
    const b = createMetrics('b', quiet);
    assert.notEqual(a.registry, b.registry);
    a.quotaStoreErrorsTotal.inc();
    a.quotaStoreErrorsTotal.inc();
    assert.equal(sampleValue(await a.registry.metrics(), 'quota_store_errors_total'), 2);
    assert.equal(sampleValue(await b.registry.metrics(), 'quota_store_errors_total'), 0);
  });

  it('declares every metric with its type and labels every series with the service', async () => {
    const m = createMetrics('gateway', quiet);
    recordHttpRequest(m, '/healthz', 200, 0.01);
    const text = await m.registry.metrics();
    assert.deepEqual(Object.fromEntries(metricTypes(text)), {
      http_requests_total: 'counter',
      http_request_duration_seconds: 'histogram',
      time_to_first_token_seconds: 'histogram',
      tokens_total: 'counter',
      quota_decisions_total: 'counter',
      quota_store_errors_total: 'counter',
      breaker_state: 'gauge',
      breaker_transitions_total: 'counter',
      worker_in_flight: 'gauge',
      worker_queue: 'gauge',
      engine_tokens_per_second: 'gauge',
      grpc_server_handled_total: 'counter',
    });
    for (const sample of parseExposition(text)) assert.equal(sample.labels['service'], 'gateway', sample.name);
  });

  it('registers the default process metrics with the service label', async () => {
    const m = createMetrics('quota');
    const text = await m.registry.metrics();
    const samples = parseExposition(text);
    const cpu = samples.find((s) => s.name === 'process_cpu_user_seconds_total');
    assert.ok(cpu, 'process_cpu_user_seconds_total is exported');
    assert.equal(cpu.labels['service'], 'quota');
    assert.ok(samples.some((s) => s.name === 'nodejs_eventloop_lag_seconds'));
  });

  it('per-process factories register only what that process produces', async () => {
    const names = async (registry: { metrics(): Promise<string> }) => [...metricTypes(await registry.metrics()).keys()].sort();
    assert.deepEqual(await names(createGatewayMetrics(quiet).registry), [
      'breaker_state',
      'breaker_transitions_total',
      'http_request_duration_seconds',
      'http_requests_total',
      'time_to_first_token_seconds',
      'tokens_total',
    ]);
    assert.deepEqual(await names(createAuthMetrics(quiet).registry), ['grpc_server_handled_total']);
    assert.deepEqual(await names(createQuotaMetrics(quiet).registry), [
      'grpc_server_handled_total',
      'quota_decisions_total',
      'quota_store_errors_total',
    ]);
    assert.deepEqual(await names(createInferenceMetrics(quiet).registry), [
      'engine_tokens_per_second',
      'grpc_server_handled_total',
      'time_to_first_token_seconds',
      'tokens_total',
      'worker_in_flight',
      'worker_queue',
    ]);
    assert.equal(createQuotaMetrics(quiet).service, 'quota');
    assert.equal(ALL_METRICS.length, 12);
  });
});

describe('helpers', () => {
  it('recordHttpRequest counts by route and status and observes the duration', async () => {
    const m = createGatewayMetrics(quiet);
    recordHttpRequest(m, '/:project/:endpoint/v1/chat/completions', 200, 0.2);
    recordHttpRequest(m, '/:project/:endpoint/v1/chat/completions', 200, 3);
    recordHttpRequest(m, '/:project/:endpoint/v1/chat/completions', 429, 0.004);
    const text = await m.registry.metrics();
    const route = '/:project/:endpoint/v1/chat/completions';
    assert.equal(sampleValue(text, 'http_requests_total', { route, status: '200' }), 2);
    assert.equal(sampleValue(text, 'http_requests_total', { route, status: '429' }), 1);
    assert.equal(sampleValue(text, 'http_request_duration_seconds_count', { route }), 3);
    assert.equal(sampleValue(text, 'http_request_duration_seconds_bucket', { route, le: '0.25' }), 2);
    assert.equal(sampleValue(text, 'http_request_duration_seconds_bucket', { route, le: '+Inf' }), 3);
    assert.ok(Math.abs((sampleValue(text, 'http_request_duration_seconds_sum', { route }) ?? 0) - 3.204) < 1e-9);
  });

  it('time_to_first_token_seconds observes per pool', async () => {
    const m = createInferenceMetrics(quiet);
    m.timeToFirstToken.observe({ pool: 'cpu' }, 0.3);
    m.timeToFirstToken.observe({ pool: 'gpu-nvidia' }, 0.02);
    const text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'time_to_first_token_seconds_count', { pool: 'cpu' }), 1);
    assert.equal(sampleValue(text, 'time_to_first_token_seconds_bucket', { pool: 'gpu-nvidia', le: '0.025' }), 1);
    assert.equal(sampleValue(text, 'time_to_first_token_seconds_bucket', { pool: 'cpu', le: '0.25' }), 0);
  });

  it('recordTokens counts prompt tokens as in and completion tokens as out', async () => {
    const m = createInferenceMetrics(quiet);
    recordTokens(m, { promptTokens: 12, completionTokens: 30 });
    recordTokens(m, { promptTokens: 8, completionTokens: 0 });
    const text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'tokens_total', { direction: 'in' }), 20);
    assert.equal(sampleValue(text, 'tokens_total', { direction: 'out' }), 30);
  });

  it('recordQuotaDecision counts by decision and tier; store errors are a plain counter', async () => {
    const m = createQuotaMetrics(quiet);
    recordQuotaDecision(m, 'allow', 'free');
    recordQuotaDecision(m, 'allow', 'free');
    recordQuotaDecision(m, 'deny', 'free');
    recordQuotaDecision(m, 'allow', 'gpu_nvidia_shared');
    m.quotaStoreErrorsTotal.inc();
    const text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'quota_decisions_total', { decision: 'allow', tier: 'free' }), 2);
    assert.equal(sampleValue(text, 'quota_decisions_total', { decision: 'deny', tier: 'free' }), 1);
    assert.equal(sampleValue(text, 'quota_decisions_total', { decision: 'allow', tier: 'gpu_nvidia_shared' }), 1);
    assert.equal(sampleValue(text, 'quota_store_errors_total'), 1);
  });

  it('recordBreakerState maps states to 0 / 0.5 / 1 and counts transitions', async () => {
    const m = createGatewayMetrics(quiet);
    const target = 'inference:cpu@inference-cpu:50061';
    recordBreakerState(m, target, 'open');
    let text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'breaker_state', { target }), 1);
    recordBreakerState(m, target, 'half-open');
    text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'breaker_state', { target }), 0.5);
    recordBreakerState(m, target, 'closed');
    text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'breaker_state', { target }), 0);
    assert.equal(sampleValue(text, 'breaker_transitions_total', { target, state: 'open' }), 1);
    assert.equal(sampleValue(text, 'breaker_transitions_total', { target, state: 'half-open' }), 1);
    assert.equal(sampleValue(text, 'breaker_transitions_total', { target, state: 'closed' }), 1);
  });

  it('observeBreaker follows open/halfOpen/close events until unsubscribed', async () => {
    const m = createGatewayMetrics(quiet);
    const breaker = Object.assign(new EventEmitter(), { opened: false, halfOpen: false });
    const stop = observeBreaker(m, 'auth', breaker);
    let text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'breaker_state', { target: 'auth' }), 0, 'initial state is exported');
    assert.equal(sampleValue(text, 'breaker_transitions_total', { target: 'auth', state: 'closed' }), undefined);
    breaker.emit('open');
    text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'breaker_state', { target: 'auth' }), 1);
    breaker.emit('halfOpen');
    breaker.emit('close');
    text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'breaker_state', { target: 'auth' }), 0);
    assert.equal(sampleValue(text, 'breaker_transitions_total', { target: 'auth', state: 'half-open' }), 1);
    stop();
    assert.equal(breaker.listenerCount('open') + breaker.listenerCount('halfOpen') + breaker.listenerCount('close'), 0);
    breaker.emit('open');
    text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'breaker_state', { target: 'auth' }), 0, 'no updates after unsubscribe');

    const alreadyOpen = Object.assign(new EventEmitter(), { opened: true, halfOpen: false });
    observeBreaker(m, 'quota', alreadyOpen);
    text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'breaker_state', { target: 'quota' }), 1);
  });

  it('recordWorkerLoad sets the worker gauges', async () => {
    const m = createInferenceMetrics(quiet);
    recordWorkerLoad(m, { worker: 'cpu-1', inFlight: 3, queued: 5, tokensPerSecond: 41.5 });
    recordWorkerLoad(m, { worker: 'cpu-1', inFlight: 2, queued: 0 });
    const text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'worker_in_flight', { worker: 'cpu-1' }), 2);
    assert.equal(sampleValue(text, 'worker_queue', { worker: 'cpu-1' }), 0);
    assert.equal(sampleValue(text, 'engine_tokens_per_second', { worker: 'cpu-1' }), 41.5, 'kept when not reported');
  });
});

describe('workerLoad source', () => {
  it('reads the worker signals at every scrape', async () => {
    let load: { worker: string; inFlight: number; queued: number; tokensPerSecond: number } | undefined;
    const m = createInferenceMetrics({ defaultMetrics: false, workerLoad: () => load });
    let text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'worker_in_flight', { worker: 'cpu-1' }), undefined, 'nothing before the worker exists');
    load = { worker: 'cpu-1', inFlight: 1, queued: 2, tokensPerSecond: 30 };
    text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'worker_in_flight', { worker: 'cpu-1' }), 1);
    assert.equal(sampleValue(text, 'worker_queue', { worker: 'cpu-1' }), 2);
    assert.equal(sampleValue(text, 'engine_tokens_per_second', { worker: 'cpu-1' }), 30);
    load = { worker: 'cpu-1', inFlight: 4, queued: 0, tokensPerSecond: 28.5 };
    text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'worker_in_flight', { worker: 'cpu-1', service: 'inference' }), 4);
    assert.equal(sampleValue(text, 'worker_queue', { worker: 'cpu-1' }), 0);
    assert.equal(sampleValue(text, 'engine_tokens_per_second', { worker: 'cpu-1' }), 28.5);
  });
});

describe('parseExposition', () => {
  it('reads escaped label values and special numbers', () => {
    const samples = parseExposition('# HELP x y\n# TYPE x gauge\nx{a="q\\"uote",b="back\\\\slash"} +Inf\ny 2\n');
    assert.deepEqual(samples, [
      { name: 'x', labels: { a: 'q"uote', b: 'back\\slash' }, value: Number.POSITIVE_INFINITY },
      { name: 'y', labels: {}, value: 2 },
    ]);
  });
});
