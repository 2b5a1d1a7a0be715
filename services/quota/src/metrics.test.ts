import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { metricTypes, sampleValue } from '../../../test/helpers/exposition.js';
import { createQuotaMetrics, recordQuotaDecision } from './metrics.js';

describe('quota metrics', () => {
  it('registers only what the quota service produces, labelled service="quota"', async () => {
    const m = createQuotaMetrics({ defaultMetrics: false });
    const text = await m.registry.metrics();
    assert.deepEqual([...metricTypes(text).keys()].sort(), [
      'grpc_server_handled_total',
      'quota_decisions_total',
      'quota_leases_total',
      'quota_store_errors_total',
    ]);
    assert.equal(sampleValue(text, 'quota_store_errors_total', { service: 'quota' }), 0);
  });

  it('recordQuotaDecision counts by decision and tier; store errors are a plain counter', async () => {
    const m = createQuotaMetrics({ defaultMetrics: false });
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
});
