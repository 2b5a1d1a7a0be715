/**
 * Token limits at the quota layer plus the Reserve/Settle contract, over real gRPC, for
 * both stores (memory, and Redis with the clock injected): tokens charged in the window equal the
 * real usage exactly, retries charge nothing, settlements are idempotent and land in their own window.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { Decision } from '../../gen/xerotier/quota/v1/quota_service.js';
import type { QuotaServer } from '../../services/quota/src/start.js';
import { manualClock, type ManualClock } from '../../services/quota/src/clock.js';
import { SHARED_REDIS_URL, deletePrefix, quotaClient, randomPrefix, startQuota, type QuotaClient } from './helpers.js';

const TIER = 'free'; // 20 req/min, 10,000 tokens/min
const TPM = 10_000;

for (const backend of ['memory', 'redis'] as const) {
  describe(`tokens and idempotency (${backend} store)`, () => {
    const prefix = randomPrefix();
    let clock: ManualClock;
    let server: QuotaServer;
    let client: QuotaClient;
    let close: () => void;
    let redis: Redis | undefined;

    before(async () => {
      clock = manualClock(Date.now());
      const env: Record<string, string> = backend === 'redis' ? { QUOTA_REDIS_URL: SHARED_REDIS_URL, QUOTA_REDIS_PREFIX: prefix } : {};
      server = await startQuota(env, { clock });
      ({ client, close } = quotaClient(server.port));
      if (backend === 'redis') redis = new Redis(SHARED_REDIS_URL);
    });
    after(async () => {
      close();
      await server.stop();
      redis?.disconnect();
      if (backend === 'redis') await deletePrefix(SHARED_REDIS_URL, prefix);
    });

    const charged = async (keyId: string): Promise<number> => {
      const limits = await client.getLimits({ keyId, tier: TIER });
      const fromService = TPM - limits.tokens!.remaining;
      if (redis) {
        // The same number straight from the window's hash (Σ field).
        const sum = Number((await redis.hget(`${prefix}{${TIER}:${keyId}}:t`, '')) ?? '0');
        assert.equal(sum, fromService, 'Redis Σ equals what the service reports');
      }
      return fromService;
    };

    it('20 concurrent 2,500-token reservations admit 4; charged = Σ real usage ± 0 after settlement', async () => {
      const keyId = `k-${randomUUID()}`;
      const reserve = (i: number) => client.reserve({ requestId: `a${i}`, keyId, tier: TIER, tokenCount: 500 + 2_000 });
      const first = await Promise.all(Array.from({ length: 20 }, (_, i) => reserve(i)));
      const admitted = first.flatMap((r, i) => (r.decision === Decision.DECISION_ALLOW ? [i] : []));
      assert.equal(admitted.length, 4, 'Σ reservations never exceed 10,000');
      for (const r of first) {
        assert.ok(r.tokens!.remaining >= 0);
        if (r.decision === Decision.DECISION_DENY) {
          assert.equal(r.deniedBy, 'tokens');
          assert.equal(r.retryable, true);
          assert.equal(r.retryAfterMs, 60_000, 'frozen clock: the first reservations leave in exactly one window');
        }
      }
      assert.equal(await charged(keyId), 10_000);
      // Real usage: less (300 completion), more than the estimate, cancelled partial, cancelled at once.
      const real = [500 + 300, 2_600, 500 + 120, 0];
      for (const [n, i] of admitted.entries()) {
        const s = await client.settle({ requestId: `a${i}`, keyId, tier: TIER, tokenCount: real[n]! });
        assert.equal(s.applied, true);
      }
      let sumReal = real.reduce((a, b) => a + b, 0);
      assert.equal(await charged(keyId), sumReal);

      // Second round, 10 s later: refunds made room for exactly two more.
      clock.advance(10_000);
      const second = await Promise.all([0, 1, 2].map((i) => reserve(100 + i)));
      const admitted2 = second.flatMap((r, i) => (r.decision === Decision.DECISION_ALLOW ? [100 + i] : []));
      assert.equal(admitted2.length, 2);
      const denied = second.find((r) => r.decision === Decision.DECISION_DENY)!;
      assert.equal(denied.retryAfterMs, 50_000, 'room appears when the first round leaves the window');
      const real2 = [800, 2_000];
      for (const [n, i] of admitted2.entries()) {
        assert.equal((await client.settle({ requestId: `a${i}`, keyId, tier: TIER, tokenCount: real2[n]! })).applied, true);
      }
      sumReal += real2[0]! + real2[1]!;
      assert.equal(await charged(keyId), sumReal);

      // The first round leaves the window; only the second round's real usage remains.
      clock.advance(50_000);
      assert.equal(await charged(keyId), 2_800);
    });

    it('an estimate above the tier tokens/min is refused at once, not retryable, and charges nothing', async () => {
      const keyId = `k-${randomUUID()}`;
      const r = await client.reserve({ requestId: 'big', keyId, tier: TIER, tokenCount: TPM + 1 });
      assert.equal(r.decision, Decision.DECISION_DENY);
      assert.equal(r.deniedBy, 'tokens');
      assert.equal(r.retryable, false);
      assert.equal(r.retryAfterMs, 0);
      assert.equal(await charged(keyId), 0);
      const limits = await client.getLimits({ keyId, tier: TIER });
      assert.equal(limits.requests!.remaining, 20);
    });

    it('Reserve is idempotent by request id (sequential and concurrent retries charge once)', async () => {
      const keyId = `k-${randomUUID()}`;
      const req = { requestId: 'same', keyId, tier: TIER, tokenCount: 1_000 };
      const results = [await client.reserve(req), ...(await Promise.all(Array.from({ length: 10 }, () => client.reserve(req))))];
      for (const r of results) assert.equal(r.decision, Decision.DECISION_ALLOW);
      const limits = await client.getLimits({ keyId, tier: TIER });
      assert.equal(limits.requests!.remaining, 19);
      assert.equal(await charged(keyId), 1_000);
    });

    it('Settle is idempotent: the second call is not applied and changes nothing; unknown ids neither', async () => {
      const keyId = `k-${randomUUID()}`;
      await client.reserve({ requestId: 'r', keyId, tier: TIER, tokenCount: 3_000 });
      const first = await client.settle({ requestId: 'r', keyId, tier: TIER, tokenCount: 1_200 });
      assert.equal(first.applied, true);
      assert.equal(first.tokens!.remaining, TPM - 1_200);
      const again = await client.settle({ requestId: 'r', keyId, tier: TIER, tokenCount: 9 });
      assert.equal(again.applied, false);
      assert.equal(again.tokens!.remaining, TPM - 1_200);
      const unknown = await client.settle({ requestId: 'nope', keyId, tier: TIER, tokenCount: 5 });
      assert.equal(unknown.applied, false);
      assert.equal(await charged(keyId), 1_200);
      // Concurrent retries of one settlement: exactly one applies.
      await client.reserve({ requestId: 'c', keyId, tier: TIER, tokenCount: 2_000 });
      const racing = await Promise.all(
        Array.from({ length: 10 }, (_, i) => client.settle({ requestId: 'c', keyId, tier: TIER, tokenCount: 100 + i })),
      );
      assert.equal(racing.filter((r) => r.applied).length, 1);
      const winner = racing.findIndex((r) => r.applied);
      assert.equal(await charged(keyId), 1_200 + 100 + winner);
    });

    it('a settlement after its window rolled over does not credit (or charge) the new window', async () => {
      const keyId = `k-${randomUUID()}`;
      const t0 = clock();
      assert.equal((await client.reserve({ requestId: 'A', keyId, tier: TIER, tokenCount: 5_000 })).decision, Decision.DECISION_ALLOW);
      clock.advance(30_000);
      assert.equal((await client.reserve({ requestId: 'B', keyId, tier: TIER, tokenCount: 5_000 })).decision, Decision.DECISION_ALLOW);
      assert.equal(await charged(keyId), 10_000);
      clock.set(t0 + 60_000); // A has left the window, B has not
      assert.equal(await charged(keyId), 5_000);
      const refund = await client.settle({ requestId: 'A', keyId, tier: TIER, tokenCount: 0 });
      assert.equal(refund.applied, false);
      assert.equal(refund.tokens!.remaining, 5_000, 'the late refund did not credit the new window');
      const late = await client.reserve({ requestId: 'C', keyId, tier: TIER, tokenCount: 5_001 });
      assert.equal(late.decision, Decision.DECISION_DENY, 'still only 5,000 free');
      assert.equal((await client.settle({ requestId: 'B', keyId, tier: TIER, tokenCount: 1_000 })).applied, true);
      assert.equal(await charged(keyId), 1_000);
      clock.set(t0 + 90_000); // B leaves too
      assert.equal(await charged(keyId), 0);
      const limits = await client.getLimits({ keyId, tier: TIER });
      assert.equal(limits.requests!.remaining, 20);
      assert.equal(limits.tokens!.resetTime!.getTime(), t0 + 90_000, 'empty window: reset is now');
    });
  });
}
