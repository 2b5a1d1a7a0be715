/**
 * The quota service over real gRPC: self-hosted is unlimited (even with Redis down), bad calls are
 * INVALID_ARGUMENT, the service credential is enforced, TIERS_FILE selects the tier table, health is SERVING.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createChannel, createClient } from 'nice-grpc';
import { HealthDefinition } from 'nice-grpc-server-health';
import { Decision } from '../../gen/xerotier/quota/v1/quota_service.js';
import { AppError } from '../../lib/errors/app-error.js';
import { freePort, quotaClient, startQuota } from './helpers.js';

describe('quota service over gRPC', () => {
  it('self-hosted: always ALLOW with unlimited statuses, even when Redis is unreachable and the policy is fail-closed', async () => {
    const deadPort = await freePort();
    const server = await startQuota({ QUOTA_REDIS_URL: `redis://127.0.0.1:${deadPort}`, QUOTA_FAILURE_POLICY: 'fail-closed' });
    const { client, close } = quotaClient(server.port);
    try {
      const results = await Promise.all(
        Array.from({ length: 500 }, (_, i) =>
          client.reserve({ requestId: `r${i}`, keyId: 'k', tier: 'self_hosted', tokenCount: 1_000_000 }),
        ),
      );
      for (const r of results) {
        assert.equal(r.decision, Decision.DECISION_ALLOW);
        assert.equal(r.requests!.unlimited, true);
        assert.equal(r.tokens!.unlimited, true);
      }
      const limits = await client.getLimits({ keyId: 'k', tier: 'self_hosted' });
      assert.equal(limits.requests!.unlimited && limits.tokens!.unlimited, true);
      // A limited tier on the same replica follows fail-closed.
      const limited = await client.reserve({ requestId: 'x', keyId: 'k', tier: 'free', tokenCount: 1 });
      assert.equal(limited.decision, Decision.DECISION_DENY);
      assert.equal(limited.retryable, true);
      assert.equal(limited.retryAfterMs, 1_000);
      assert.ok(server.stats().storeErrors >= 1);
    } finally {
      close();
      await server.stop();
    }
  });

  it('unknown tier and malformed calls are INVALID_ARGUMENT (invalid_request), not DENY', async () => {
    const server = await startQuota();
    const { client, close } = quotaClient(server.port);
    try {
      await assert.rejects(
        client.reserve({ requestId: 'r', keyId: 'k', tier: 'gold', tokenCount: 1 }),
        (err: unknown) => err instanceof AppError && err.kind === 'invalid_request' && err.code === 'unknown_tier',
      );
      await assert.rejects(client.settle({ requestId: '', keyId: 'k', tier: 'free', tokenCount: 1 }), (err: unknown) => err instanceof AppError && err.kind === 'invalid_request');
      await assert.rejects(client.getLimits({ keyId: 'k', tier: '' }), (err: unknown) => err instanceof AppError && err.kind === 'invalid_request');
    } finally {
      close();
      await server.stop();
    }
  });

  it('requires the service credential when SERVICE_TOKEN is set; health stays open and SERVING', async () => {
    const server = await startQuota({ SERVICE_TOKEN: 'tok' });
    const anonymous = quotaClient(server.port);
    const trusted = quotaClient(server.port, 'tok');
    const channel = createChannel(`127.0.0.1:${server.port}`);
    try {
      await assert.rejects(
        anonymous.client.reserve({ requestId: 'r', keyId: 'k', tier: 'free', tokenCount: 1 }),
        (err: unknown) => err instanceof AppError && err.kind === 'unauthenticated',
      );
      const ok = await trusted.client.reserve({ requestId: 'r', keyId: 'k', tier: 'free', tokenCount: 1 });
      assert.equal(ok.decision, Decision.DECISION_ALLOW);
      const health = await createClient(HealthDefinition, channel).check({ service: 'xerotier.quota.v1.QuotaService' });
      assert.equal(health.status, 1, 'SERVING');
    } finally {
      anonymous.close();
      trusted.close();
      channel.close();
      await server.stop();
    }
  });

  it('TIERS_FILE selects another tier table', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'xq-tiers-'));
    const file = path.join(dir, 'tiers.json');
    writeFileSync(
      file,
      JSON.stringify({
        tiers: {
          tiny: { name: 'Tiny', requestsPerMinute: 2, tokensPerMinute: 100, pools: ['cpu'], requestTimeoutSeconds: 30, idleStreamTimeoutSeconds: 60 },
        },
      }),
    );
    const server = await startQuota({ TIERS_FILE: file });
    const { client, close } = quotaClient(server.port);
    try {
      const decisions = [];
      for (let i = 0; i < 3; i++) decisions.push((await client.reserve({ requestId: `r${i}`, keyId: 'k', tier: 'tiny', tokenCount: 1 })).decision);
      assert.deepEqual(decisions, [Decision.DECISION_ALLOW, Decision.DECISION_ALLOW, Decision.DECISION_DENY]);
      await assert.rejects(client.getLimits({ keyId: 'k', tier: 'free' }), (err: unknown) => err instanceof AppError && err.kind === 'invalid_request');
    } finally {
      close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
