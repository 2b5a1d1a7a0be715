/**
 * Redis outages at the quota layer, on a private redis-server killed (SIGKILL, shortened) or
 * frozen (SIGSTOP, a silent peer): while Redis is dead or silent every decision returns within 100 ms and
 * follows the policy (fail-open-local at limit/3 per replica; fail-closed refuses, retry in 1 s),
 * the outage is logged once and counted; after a restart full enforcement resumes within 5 s.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { Decision, type ReserveResponse } from '../../gen/xerotier/quota/v1/quota_service.js';
import type { QuotaServer } from '../../services/quota/src/start.js';
import { capturingLogger, quotaClient, startPrivateRedis, startQuota, type PrivateRedis, type QuotaClient } from './helpers.js';

const TIER = 'cpu_standard'; // 60 req/min → 20 per replica with divisor 3
const BUDGET_MS = 100;

interface Timed<T> {
  ms: number;
  value: T;
}

/** Starts `fn` every `everyMs` for `durationMs` without waiting for earlier calls; returns all results. */
async function load<T>(durationMs: number, everyMs: number, fn: (i: number) => Promise<T>): Promise<Array<Timed<T>>> {
  const started: Array<Promise<Timed<T>>> = [];
  const end = performance.now() + durationMs;
  for (let i = 0; performance.now() < end; i++) {
    const t = performance.now();
    started.push(fn(i).then((value) => ({ ms: performance.now() - t, value })));
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return Promise.all(started);
}

const allowed = (rs: Array<Timed<ReserveResponse>>): number => rs.filter((r) => r.value.decision === Decision.DECISION_ALLOW).length;

function percentile(rs: Array<Timed<unknown>>, p: number): number {
  const sorted = rs.map((r) => r.ms).sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

function report(phase: string, rs: Array<Timed<unknown>>): void {
  const over = rs.filter((r) => r.ms >= BUDGET_MS).length;
  console.log(
    `${phase}: ${rs.length} calls, p50 ${percentile(rs, 0.5).toFixed(1)} ms, p99 ${percentile(rs, 0.99).toFixed(1)} ms, ` +
      `slowest ${percentile(rs, 1).toFixed(1)} ms, ${over} ≥ ${BUDGET_MS} ms`,
  );
}

/**
 * Measured at the gRPC client, so it includes two gRPC hops and this process's scheduling. On an
 * idle machine every call is under 100 ms (the silent-Redis case costs the 50 ms budget); on a
 * shared, overloaded 2-core CI box (load average 5+) single calls have been descheduled to
 * ~120-145 ms, so at most 1% of calls (at least one) may reach 100 ms, and none may come near
 * waiting on Redis for long (no request waits > 1 s).
 */
function checkLatency(rs: Array<Timed<unknown>>): void {
  const over = rs.filter((r) => r.ms >= BUDGET_MS).length;
  assert.ok(over <= Math.ceil(rs.length * 0.01), `${over} of ${rs.length} calls took ≥ ${BUDGET_MS} ms`);
  assert.ok(percentile(rs, 1) < 250, `slowest ${percentile(rs, 1)} ms`);
}

describe('Redis outage', () => {
  let redis: PrivateRedis;
  let open: QuotaServer; // fail-open-local, divisor 3
  let closed: QuotaServer; // fail-closed
  let openClient: { client: QuotaClient; close(): void };
  let closedClient: { client: QuotaClient; close(): void };
  const captured = capturingLogger('info');
  const prefix = `xq-outage-${randomUUID()}:`;

  before(async () => {
    redis = await startPrivateRedis();
    const env = { QUOTA_REDIS_URL: redis.url, QUOTA_REDIS_PREFIX: prefix, QUOTA_LOCAL_FALLBACK_DIVISOR: '3' };
    open = await startQuota({ ...env, QUOTA_FAILURE_POLICY: 'fail-open-local' }, { logger: captured.logger });
    closed = await startQuota({ ...env, QUOTA_FAILURE_POLICY: 'fail-closed' });
    openClient = quotaClient(open.port);
    closedClient = quotaClient(closed.port);
  });
  after(async () => {
    openClient.close();
    closedClient.close();
    await Promise.all([open.stop(), closed.stop()]);
    await redis.dispose();
  });

  const reserve = (c: QuotaClient, keyId: string, i: number, tokens = 100) =>
    c.reserve({ requestId: `r${i}-${randomUUID()}`, keyId, tier: TIER, tokenCount: tokens });

  it('SIGKILL: decisions stay under 100 ms and follow each policy; restart → enforcement back within 5 s', async () => {
    // Healthy: both replicas decide on the shared Redis.
    const warm = `warm-${randomUUID()}`;
    assert.equal((await reserve(openClient.client, warm, 0)).requests!.remaining, 59);
    assert.equal((await reserve(closedClient.client, warm, 1)).requests!.remaining, 58);
    assert.equal(open.stats().storeErrors, 0);

    await redis.kill();
    const key = `k-${randomUUID()}`;
    let openRes: Array<Timed<ReserveResponse>>;
    let closedRes: Array<Timed<ReserveResponse>>;
    let others: Array<Timed<unknown>>;
    let statsDuringOutage: ReturnType<QuotaServer['stats']>;
    try {
      // Mixed load for 2 s: reserves on both replicas, settlements and limit reads on the open one.
      let settles: Array<Timed<unknown>>;
      let reads: Array<Timed<unknown>>;
      [openRes, closedRes, settles, reads] = await Promise.all([
        load(2_000, 20, (i) => reserve(openClient.client, key, i)),
        load(2_000, 20, (i) => reserve(closedClient.client, key, i)),
        load(2_000, 40, (i) => openClient.client.settle({ requestId: `s${i}`, keyId: key, tier: TIER, tokenCount: 10 })),
        load(2_000, 40, () => openClient.client.getLimits({ keyId: key, tier: TIER })),
      ]);
      others = [...settles, ...reads];
      statsDuringOutage = open.stats();
    } finally {
      // Restart (empty, no persistence) before asserting anything, so a failure cannot cascade.
      await redis.start();
    }
    const restartedAt = performance.now();
    const probe = new Redis(redis.port, '127.0.0.1');
    let openBackMs = -1;
    let closedBackMs = -1;
    try {
      while (performance.now() - restartedAt < 10_000 && (openBackMs < 0 || closedBackMs < 0)) {
        if (openBackMs < 0) {
          const probeKey = `probe-${randomUUID()}`;
          await reserve(openClient.client, probeKey, 0);
          if ((await probe.exists(`${prefix}{${TIER}:${probeKey}}:l`)) === 1) openBackMs = performance.now() - restartedAt;
        }
        if (closedBackMs < 0) {
          const r = await reserve(closedClient.client, `probe-${randomUUID()}`, 0);
          if (r.decision === Decision.DECISION_ALLOW) closedBackMs = performance.now() - restartedAt;
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    } finally {
      probe.disconnect();
    }

    const all = [...openRes, ...closedRes, ...others];
    report('redis killed', all);
    checkLatency(all);
    assert.equal(allowed(openRes), 20, 'fail-open-local admits limit / divisor on this replica');
    for (const { value: r } of closedRes) {
      assert.equal(r.decision, Decision.DECISION_DENY);
      assert.deepEqual([r.retryable, r.retryAfterMs], [true, 1_000]);
    }
    assert.ok(statsDuringOutage.degraded && statsDuringOutage.outages === 1);
    assert.ok(statsDuringOutage.storeErrors >= openRes.length, `storeErrors ${statsDuringOutage.storeErrors}`);
    const outageLines = captured.lines().filter((l) => String(l['msg']).includes('unreachable'));
    assert.equal(outageLines.length, 1, 'one log line per outage, not per request');

    console.log(`redis restarted: enforcement back after ${openBackMs.toFixed(0)} ms (fail-open-local), ${closedBackMs.toFixed(0)} ms (fail-closed)`);
    assert.ok(openBackMs >= 0 && openBackMs <= 5_000, `fail-open-local replica back after ${openBackMs} ms`);
    assert.ok(closedBackMs >= 0 && closedBackMs <= 5_000, `fail-closed replica back after ${closedBackMs} ms`);

    // Both replicas enforce one shared limit again.
    const shared = `shared-${randomUUID()}`;
    const burst = await Promise.all(Array.from({ length: 100 }, (_, i) => reserve(i % 2 ? openClient.client : closedClient.client, shared, i)));
    assert.equal(burst.filter((r) => r.decision === Decision.DECISION_ALLOW).length, 60);
    assert.equal(open.stats().degraded, false);
    assert.equal(captured.lines().filter((l) => String(l['msg']).includes('reachable again')).length, 1);
  });

  it('SIGSTOP (silent Redis, sockets open): decisions still return within 100 ms, then recover on SIGCONT', async () => {
    const errorsBefore = open.stats().storeErrors;
    redis.pause();
    const key = `k-${randomUUID()}`;
    let results: Array<Timed<ReserveResponse>>;
    try {
      results = await load(2_000, 10, (i) => reserve(openClient.client, key, i));
    } finally {
      redis.resume();
    }
    report('redis stopped', results);
    checkLatency(results);
    assert.ok(allowed(results) <= 20, 'never more than the local share during the outage');
    assert.ok(open.stats().storeErrors > errorsBefore);
    const resumedAt = performance.now();
    for (;;) {
      const r = await reserve(openClient.client, `after-${randomUUID()}`, 0);
      if (r.requests!.remaining === 59 && !open.stats().degraded) break;
      assert.ok(performance.now() - resumedAt < 5_000, 'recovered within 5 s');
      await new Promise((res) => setTimeout(res, 25));
    }
    console.log(`redis resumed: enforcement back after ${(performance.now() - resumedAt).toFixed(0)} ms`);
  });
});
