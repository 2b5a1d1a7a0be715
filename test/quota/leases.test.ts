/**
 * Quota leases (gateway/src/quota-leases.ts over the Lease/ReleaseLease RPCs): real gRPC, real
 * quota services on the shared Redis, the gateway's own quota port and lease manager.
 *
 * - Several gateways' lease managers bursting far over a large limit admit at most the limit,
 *   and once their leases are released the key is charged exactly what was used (±0).
 * - The last part of a window (below the headroom) is admitted per request, exactly.
 * - A hot key stops calling Reserve (counted on the quota service's own metrics).
 * - A release after the lease's window rolled over changes nothing (memory and Redis stores).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Decision } from '../../gen/xerotier/quota/v1/quota_service.js';
import { createBreaker } from '../../gateway/src/breaker.js';
import { createLeasingQuotaPort, type LeasingQuotaPort } from '../../gateway/src/quota-leases.js';
import { createQuotaPort } from '../../gateway/src/upstreams.js';
import { manualClock } from '../../services/quota/src/clock.js';
import type { QuotaServer } from '../../services/quota/src/start.js';
import { createMemoryStore } from '../../services/quota/src/stores/memory.js';
import { createRedisStore } from '../../services/quota/src/stores/redis.js';
import { WINDOW_MS, type LimitPolicy, type QuotaStore } from '../../services/quota/src/stores/store.js';
import { sampleValue } from '../helpers/exposition.js';
import { cpuStandardTiers } from '../helpers/tiers.js';
import { SHARED_REDIS_URL, deletePrefix, quotaClient, randomPrefix, silentLogger, startQuota } from './helpers.js';

const LIMIT = 2_000;
const TOKENS_LIMIT = 2_000_000;
const TIER = 'cpu_standard';

interface Gateway {
  port: LeasingQuotaPort;
  admissions: { lease: number; reserve: number };
}

function gatewayQuota(quotaPort: number, lease: { lifetimeMs: number; hotRequests: number }): Gateway {
  const logger = silentLogger();
  const breaker = createBreaker(
    'quota',
    { errorThresholdPercentage: 50, volumeThreshold: 10, resetTimeoutMs: 10_000, rollingWindowMs: 10_000, timeoutMs: 5_000 },
    logger,
  );
  const inner = createQuotaPort({ address: `127.0.0.1:${quotaPort}`, timeoutMs: 5_000, breaker, logger, policy: 'fail-closed' });
  const admissions = { lease: 0, reserve: 0 };
  const port = createLeasingQuotaPort(inner, inner, {
    lifetimeMs: lease.lifetimeMs,
    hotRequests: lease.hotRequests,
    hotWindowMs: 1_000,
    clock: () => performance.now(),
    logger,
    onAdmission: (source) => admissions[source]++,
  });
  return { port, admissions };
}

/** One request through a gateway's quota port: reserve, then settle to `used` tokens when admitted. */
async function request(g: Gateway, keyId: string, estimate: number, used: number): Promise<boolean> {
  const requestId = randomUUID();
  const r = await g.port.reserve({ requestId, keyId, tier: TIER, tokens: estimate });
  assert.ok(r, 'quota answered');
  if (r.decision !== Decision.DECISION_ALLOW) {
    assert.equal(r.decision, Decision.DECISION_DENY);
    return false;
  }
  g.port.settle({ requestId, keyId, tier: TIER, tokens: used });
  return true;
}

async function reserveCalls(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const calls = sampleValue(text, 'grpc_server_handled_total', { method: '/xerotier.quota.v1.QuotaService/Reserve', code: 'OK' });
  assert.ok(calls !== undefined, 'the quota service counts its Reserve calls');
  return calls;
}

describe('quota leases through real gRPC on one Redis', () => {
  const prefix = randomPrefix();
  const servers: QuotaServer[] = [];
  const tiersFile = cpuStandardTiers({ requestsPerMinute: LIMIT, tokensPerMinute: TOKENS_LIMIT });

  before(async () => {
    for (let i = 0; i < 2; i++) {
      servers.push(
        await startQuota({
          QUOTA_REDIS_URL: SHARED_REDIS_URL,
          QUOTA_REDIS_PREFIX: prefix,
          QUOTA_REDIS_TIMEOUT_MS: '1000',
          QUOTA_METRICS_PORT: '0',
          TIERS_FILE: tiersFile,
          // Leases for this 2,000/min key (the default minimum is 10,000/min), so a test can
          // drive a key through its whole window in a few seconds.
          QUOTA_LEASE_MIN_LIMIT: '1000',
        }),
      );
    }
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await deletePrefix(SHARED_REDIS_URL, prefix);
  });

  const limitsOf = async (keyId: string): Promise<{ requestsUsed: number; tokensUsed: number }> => {
    const c = quotaClient(servers[0]!.port);
    try {
      const l = await c.client.getLimits({ keyId, tier: TIER });
      return { requestsUsed: LIMIT - l.requests!.remaining, tokensUsed: TOKENS_LIMIT - l.tokens!.remaining };
    } finally {
      c.close();
    }
  };

  it('3 gateways bursting far over the limit admit at most the limit, and after release the charge equals the use (±0)', async () => {
    const keyId = `key-${randomUUID()}`;
    // Two gateways on one quota replica, one on the other: leases meet in Redis.
    const gateways = [0, 1, 0].map((i) => gatewayQuota(servers[i]!.port, { lifetimeMs: 300, hotRequests: 4 }));
    let admitted = 0;
    let tokensUsed = 0;
    let n = 0;
    // 6,000 requests (3 × the limit) in waves of 30 per gateway; usage below the estimate, varied.
    for (let wave = 0; wave < 67; wave++) {
      const results = await Promise.all(
        gateways.flatMap((g) =>
          Array.from({ length: 30 }, () => {
            const used = 20 + (n++ % 81);
            return request(g, keyId, 100, used).then((ok) => {
              if (ok) {
                admitted++;
                tokensUsed += used;
              }
            });
          }),
        ),
      );
      assert.equal(results.length, 90);
    }
    const leased = gateways.reduce((s, g) => s + g.admissions.lease, 0);
    assert.ok(leased > 0, 'some admissions came from leases');
    assert.ok(admitted <= LIMIT, `admitted ${admitted} ≤ ${LIMIT}`);
    // At most the leases held at the end of the burst are lost for it; the rest is admitted.
    assert.ok(admitted >= LIMIT * 0.75, `admitted ${admitted}`);
    await Promise.all(gateways.map((g) => g.port.close()));
    const charged = await limitsOf(keyId);
    assert.equal(charged.requestsUsed, admitted, 'requests charged = requests admitted');
    assert.equal(charged.tokensUsed, tokensUsed, 'tokens charged = tokens used');
  });

  it('the last part of the window (below the headroom) is admitted per request, exactly up to the limit', async () => {
    const keyId = `key-${randomUUID()}`;
    const g = gatewayQuota(servers[0]!.port, { lifetimeMs: 300, hotRequests: 4 });
    let admitted = 0;
    let tokensUsed = 0;
    // Sequential, 8 at a time: the key is hot throughout.
    for (;;) {
      const oks = await Promise.all(Array.from({ length: 8 }, () => request(g, keyId, 50, 30)));
      for (const ok of oks) {
        if (ok) {
          admitted++;
          tokensUsed += 30;
        }
      }
      if (oks.some((ok) => !ok)) break;
    }
    assert.ok(g.admissions.lease > 0, 'leases were used below the headroom');
    await g.port.close();
    // Whatever a lease still held is back now: continue per request (a fresh port, leases off the path).
    const plain = gatewayQuota(servers[1]!.port, { lifetimeMs: 300, hotRequests: Number.MAX_SAFE_INTEGER });
    while (await request(plain, keyId, 50, 30)) {
      admitted++;
      tokensUsed += 30;
    }
    await plain.port.close();
    assert.equal(admitted, LIMIT, 'exactly the limit admitted');
    const charged = await limitsOf(keyId);
    assert.equal(charged.requestsUsed, LIMIT);
    assert.equal(charged.tokensUsed, tokensUsed);
    // Leases are never granted into the last 25 %: the gateway's lease admissions fit in 75 %.
    assert.ok(g.admissions.lease <= LIMIT * 0.75, `lease admissions ${g.admissions.lease}`);
    assert.ok(g.admissions.reserve >= LIMIT * 0.25 - 8 * 2, `reserve admissions ${g.admissions.reserve}`);
  });

  it('a hot key stops making per-request Reserve calls', async () => {
    const keyId = `key-${randomUUID()}`;
    const g = gatewayQuota(servers[0]!.port, { lifetimeMs: 500, hotRequests: 4 });
    const metricsPort = servers[0]!.metricsPort!;
    // Warm up: the key becomes hot and its first lease arrives.
    for (let i = 0; i < 40; i++) {
      await request(g, keyId, 10, 5);
      await new Promise((r) => setTimeout(r, 2));
    }
    const reservesBefore = await reserveCalls(metricsPort);
    const leaseBefore = g.admissions.lease;
    const requests = 600;
    for (let i = 0; i < requests / 6; i++) {
      await Promise.all(Array.from({ length: 6 }, () => request(g, keyId, 10, 5)));
      await new Promise((r) => setTimeout(r, 2));
    }
    const reserves = (await reserveCalls(metricsPort)) - reservesBefore;
    const leased = g.admissions.lease - leaseBefore;
    await g.port.close();
    assert.ok(leased >= requests * 0.9, `${leased} of ${requests} admitted from leases`);
    assert.ok(reserves <= requests * 0.1, `${reserves} Reserve calls for ${requests} requests`);
    const charged = await limitsOf(keyId);
    assert.equal(charged.requestsUsed, 40 + requests);
    assert.equal(charged.tokensUsed, 5 * (40 + requests));
  });
});

describe('leases for small limits', () => {
  it('a key below QUOTA_LEASE_MIN_LIMIT (default 10,000/min) gets no lease: every request stays exact', async () => {
    const server = await startQuota({ TIERS_FILE: cpuStandardTiers({ requestsPerMinute: 9_999, tokensPerMinute: TOKENS_LIMIT }) });
    const c = quotaClient(server.port);
    try {
      const r = await c.client.lease({ keyId: `key-${randomUUID()}`, tier: TIER, requests: 10, tokens: 100 });
      assert.equal(r.grantedRequests, 0);
      assert.equal(r.leaseId, '');
      assert.equal(r.requestsStatus?.remaining, 9_999, 'nothing charged');
      const u = await c.client.lease({ keyId: `key-${randomUUID()}`, tier: 'self_hosted', requests: 10, tokens: 100 });
      assert.equal(u.grantedRequests, 10, 'unlimited: lent as asked, nothing counted');
      await assert.rejects(c.client.lease({ keyId: 'k', tier: TIER, requests: 0, tokens: 1 }), /requests must be an integer/);
    } finally {
      c.close();
      await server.stop();
    }
  });
});

describe('lease release after the window rolled over changes nothing', () => {
  const policy: LimitPolicy = { requests: 1_000, tokens: 100_000, windowMs: WINDOW_MS };
  const cases: Array<[string, () => Promise<{ store: QuotaStore; cleanup: () => Promise<void> }>]> = [
    ['memory', async () => ({ store: createMemoryStore(), cleanup: async () => {} })],
    [
      'redis',
      async () => {
        const prefix = randomPrefix();
        const store = createRedisStore(SHARED_REDIS_URL, { prefix, commandTimeoutMs: 1_000 });
        assert.equal(await store.waitReady(5_000), true, 'redis reachable');
        return {
          store,
          cleanup: async () => {
            await store.close();
            await deletePrefix(SHARED_REDIS_URL, prefix);
          },
        };
      },
    ],
  ];
  for (const [name, make] of cases) {
    it(`${name}: a released lease credits its own window only, once`, async () => {
      const { store, cleanup } = await make();
      try {
        const clock = manualClock();
        const scope = `cpu_standard:${randomUUID()}`;
        const a = await store.lease(scope, { leaseId: 'lease:a', requests: 100, tokens: 10_000, headroom: 0.25 }, policy, clock());
        assert.equal(a.grantedRequests, 100);
        assert.equal(a.grantedTokens, 10_000);
        assert.equal(a.requests.used, 100);
        // Within the window: the unused part comes back (tokens: 3,000 more used than leased).
        const b = await store.lease(scope, { leaseId: 'lease:b', requests: 100, tokens: 10_000, headroom: 0.25 }, policy, clock());
        assert.equal(b.grantedRequests, 100);
        const rb = await store.releaseLease(scope, { leaseId: 'lease:b', unusedRequests: 60, unusedTokens: -3_000 }, policy, clock());
        assert.equal(rb.applied, true);
        assert.equal(rb.tokens.used, 10_000 + 13_000);
        const again = await store.releaseLease(scope, { leaseId: 'lease:b', unusedRequests: 40, unusedTokens: 10_000 }, policy, clock());
        assert.equal(again.applied, false, 'a second release changes nothing');
        let s = await store.peek(scope, policy, clock());
        assert.equal(s.requests.used, 100 + 40);
        assert.equal(s.tokens.used, 23_000);
        // The window rolls over; a new reservation lands in the new one.
        clock.advance(WINDOW_MS + 1);
        const r = await store.reserve(scope, { requestId: 'req-1', tokens: 500 }, policy, clock());
        assert.equal(r.allowed, true);
        const late = await store.releaseLease(scope, { leaseId: 'lease:a', unusedRequests: 100, unusedTokens: 10_000 }, policy, clock());
        assert.equal(late.applied, false);
        s = await store.peek(scope, policy, clock());
        assert.equal(s.requests.used, 1, 'the new window is not credited');
        assert.equal(s.tokens.used, 500);
      } finally {
        await cleanup();
      }
    });

    it(`${name}: leases keep the headroom, shrink to fit, and count in per-request decisions`, async () => {
      const { store, cleanup } = await make();
      try {
        const clock = manualClock();
        const scope = `cpu_standard:${randomUUID()}`;
        for (let i = 0; i < 600; i++) await store.reserve(scope, { requestId: `r${i}`, tokens: 10 }, policy, clock());
        // 400 left, 250 must stay: 150 of the 300 asked, tokens shrunk by the same factor.
        const a = await store.lease(scope, { leaseId: 'lease:a', requests: 300, tokens: 3_000, headroom: 0.25 }, policy, clock());
        assert.equal(a.grantedRequests, 150);
        assert.equal(a.grantedTokens, 1_500);
        const none = await store.lease(scope, { leaseId: 'lease:b', requests: 10, tokens: 100, headroom: 0.25 }, policy, clock());
        assert.equal(none.grantedRequests, 0, 'nothing below the headroom');
        assert.equal(none.requests.used, 750);
        // The last 250 go per request, exactly; the 1,001st is refused with the real wait.
        let allowed = 0;
        for (let i = 0; i < 300; i++) {
          const r = await store.reserve(scope, { requestId: `t${i}`, tokens: 10 }, policy, clock());
          if (r.allowed) allowed++;
          else {
            assert.equal(r.deniedBy, 'requests');
            assert.equal(r.retryAfterMs, WINDOW_MS);
          }
        }
        assert.equal(allowed, 250);
        // Returning 100 of the lease admits exactly 100 more.
        await store.releaseLease(scope, { leaseId: 'lease:a', unusedRequests: 100, unusedTokens: 1_000 }, policy, clock());
        allowed = 0;
        for (let i = 0; i < 150; i++) if ((await store.reserve(scope, { requestId: `u${i}`, tokens: 10 }, policy, clock())).allowed) allowed++;
        assert.equal(allowed, 100);
      } finally {
        await cleanup();
      }
    });
  }
});
