/** SettleBatch: several settlements in one call, each exact and idempotent as in Settle. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Decision, QuotaServiceDefinition } from '../../gen/xerotier/quota/v1/quota_service.js';
import { createBreaker } from '../../gateway/src/breaker.js';
import { createQuotaPort } from '../../gateway/src/upstreams.js';
import { isAppError } from '../../lib/errors/app-error.js';
import { callOptions, createAppClient, createGrpcChannel } from '../../lib/grpc/client.js';
import { createQuotaMetrics } from '../../services/quota/src/metrics.js';
import { startQuotaService } from '../../services/quota/src/start.js';
import { loadQuotaConfig } from '../../services/quota/src/config.js';
import { sampleValue } from '../helpers/exposition.js';
import { unthrottledTiers } from '../helpers/tiers.js';
import { quotaClient, silentLogger } from './helpers.js';

describe('SettleBatch', () => {
  it('settles each reservation to its real usage, once; refuses oversized batches', async () => {
    const quota = await startQuotaService(loadQuotaConfig({ QUOTA_PORT: '0' }), { logger: silentLogger() });
    const channel = createGrpcChannel(`127.0.0.1:${quota.port}`);
    const client = createAppClient(QuotaServiceDefinition, channel, { address: '', target: 'quota' });
    try {
      const keyId = 'key_batch';
      const tier = 'cpu_standard'; // 50,000 tokens/min
      for (const id of ['a', 'b', 'c']) {
        const r = await client.reserve({ requestId: id, keyId, tier, tokenCount: 10_000 }, callOptions(id));
        assert.equal(r.decision, Decision.DECISION_ALLOW);
      }
      const real = { a: 120, b: 15_000, c: 0 };
      const settlements = Object.entries(real).map(([requestId, tokenCount]) => ({ requestId, keyId, tier, tokenCount }));
      const first = await client.settleBatch({ settlements }, callOptions('s1'));
      assert.deepEqual(first.results.map((r) => r.applied), [true, true, true]);
      const again = await client.settleBatch({ settlements }, callOptions('s2'));
      assert.deepEqual(again.results.map((r) => r.applied), [false, false, false], 'idempotent');
      const limits = await client.getLimits({ keyId, tier }, callOptions('l'));
      assert.equal(limits.tokens!.limit - limits.tokens!.remaining, 120 + 15_000 + 0, 'Σ charged = Σ real usage');
      const tooMany = Array.from({ length: 1001 }, (_, i) => ({ requestId: `x${i}`, keyId, tier, tokenCount: 1 }));
      await assert.rejects(client.settleBatch({ settlements: tooMany }, callOptions('big')), (err: unknown) => isAppError(err) && err.kind === 'invalid_request');
    } finally {
      channel.close();
      await quota.stop();
    }
  });

  it("the gateway's quota port closes only after every batch on its way was answered (a drain loses no settlement)", async () => {
    const metrics = createQuotaMetrics();
    const quota = await startQuotaService(loadQuotaConfig({ QUOTA_PORT: '0', TIERS_FILE: unthrottledTiers() }), { logger: silentLogger(), metrics });
    const logger = silentLogger();
    const breaker = createBreaker(
      'quota',
      { errorThresholdPercentage: 50, volumeThreshold: 10, resetTimeoutMs: 10_000, rollingWindowMs: 10_000, timeoutMs: 5_000 },
      logger,
    );
    const port = createQuotaPort({ address: `127.0.0.1:${quota.port}`, timeoutMs: 5_000, breaker, logger, policy: 'fail-closed' });
    const settled = async (): Promise<number> =>
      sampleValue(await metrics.registry.metrics(), 'grpc_server_handled_total', {
        method: '/xerotier.quota.v1.QuotaService/SettleBatch',
        code: 'OK',
      }) ?? 0;
    try {
      const keyId = 'key_drain';
      const tier = 'cpu_standard';
      const ids = Array.from({ length: 200 }, (_, i) => `d${i}`);
      for (const requestId of ids) {
        const r = await port.reserve({ requestId, keyId, tier, tokens: 100 });
        assert.equal(r?.decision, Decision.DECISION_ALLOW);
      }
      // A full batch goes out at once; close() is called while it is on its way.
      for (const requestId of ids) port.settle({ requestId, keyId, tier, tokens: 10 });
      await port.close();
      assert.equal(await settled(), 1, 'the batch was answered by the time close() returned');
      const reader = quotaClient(quota.port);
      try {
        const limits = await reader.client.getLimits({ keyId, tier });
        assert.equal(limits.tokens!.limit - limits.tokens!.remaining, ids.length * 10, 'charged the real usage');
      } finally {
        reader.close();
      }
    } finally {
      await quota.stop();
    }
  });
});
