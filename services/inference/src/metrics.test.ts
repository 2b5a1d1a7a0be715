import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { metricTypes, sampleValue } from '../../../test/helpers/exposition.js';
import { createInferenceMetrics, recordTokens, type WorkerLoad } from './metrics.js';

describe('inference metrics', () => {
  it('registers only what a worker produces, labelled service="inference"', async () => {
    const m = createInferenceMetrics({ defaultMetrics: false, workerLoad: () => undefined });
    recordTokens(m, { promptTokens: 3, completionTokens: 0 });
    const text = await m.registry.metrics();
    assert.deepEqual([...metricTypes(text).keys()].sort(), [
      'engine_tokens_per_second',
      'grpc_server_handled_total',
      'time_to_first_token_seconds',
      'tokens_total',
      'worker_in_flight',
      'worker_queue',
    ]);
    assert.equal(sampleValue(text, 'tokens_total', { direction: 'in', service: 'inference' }), 3);
    assert.equal(sampleValue(text, 'tokens_total', { direction: 'out' }), undefined, 'zeros are skipped');
  });

  it('reads the worker load at every scrape', async () => {
    let load: WorkerLoad | undefined;
    const m = createInferenceMetrics({ defaultMetrics: false, workerLoad: () => load });
    let text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'worker_in_flight', { worker: 'cpu-1' }), undefined, 'nothing before the worker exists');
    load = { worker: 'cpu-1', inFlight: 1, queued: 2, tokensPerSecond: 30 };
    text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'worker_in_flight', { worker: 'cpu-1' }), 1);
    assert.equal(sampleValue(text, 'worker_queue', { worker: 'cpu-1' }), 2);
    assert.equal(sampleValue(text, 'engine_tokens_per_second', { worker: 'cpu-1' }), 30);
    load = { worker: 'cpu-1', inFlight: 4, queued: 0 };
    text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'worker_in_flight', { worker: 'cpu-1' }), 4);
    assert.equal(sampleValue(text, 'worker_queue', { worker: 'cpu-1' }), 0);
    assert.equal(sampleValue(text, 'engine_tokens_per_second', { worker: 'cpu-1' }), 30, 'kept while not reported');
  });
});
