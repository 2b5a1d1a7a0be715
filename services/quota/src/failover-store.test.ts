import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { capturingLogger } from '../../../test/quota/helpers.js';
import { manualClock } from './clock.js';
import { createFailoverStore, OUTAGE_RETRY_AFTER_MS, withLagAwareTimeout, type PrimaryStore } from './failover-store.js';
import { createMemoryStore } from './stores/memory.js';
import { WINDOW_MS, type LimitPolicy } from './stores/store.js';

type Mode = 'up' | 'disconnected' | 'erroring' | 'hanging';

/** A primary backed by a memory store whose reachability the test controls. */
function fakePrimary(): PrimaryStore & { mode: Mode; calls: number } {
  const inner = createMemoryStore();
  const gate = async <T>(fn: () => Promise<T>): Promise<T> => {
    fake.calls++;
    if (fake.mode === 'erroring') throw new Error('ECONNRESET');
    if (fake.mode === 'hanging') return new Promise<T>(() => {});
    return fn();
  };
  const fake = {
    kind: 'redis' as const,
    mode: 'up' as Mode,
    calls: 0,
    ready: () => fake.mode !== 'disconnected',
    reserve: (...a: Parameters<PrimaryStore['reserve']>) => gate(() => inner.reserve(...a)),
    settle: (...a: Parameters<PrimaryStore['settle']>) => gate(() => inner.settle(...a)),
    peek: (...a: Parameters<PrimaryStore['peek']>) => gate(() => inner.peek(...a)),
    lease: (...a: Parameters<PrimaryStore['lease']>) => gate(() => inner.lease(...a)),
    releaseLease: (...a: Parameters<PrimaryStore['releaseLease']>) => gate(() => inner.releaseLease(...a)),
    close: () => inner.close(),
  };
  return fake;
}

const policy: LimitPolicy = { requests: 60, tokens: 50_000, windowMs: WINDOW_MS };

function setup(policyName: 'fail-open-local' | 'fail-closed', divisor = 3) {
  const primary = fakePrimary();
  const clock = manualClock();
  const { logger, lines } = capturingLogger();
  const store = createFailoverStore({ primary, policy: policyName, localDivisor: divisor, timeoutMs: 50, logger, clock });
  return { primary, clock, lines, store };
}

describe('failover store', () => {
  it('passes decisions through while Redis is up', async () => {
    const { store, clock } = setup('fail-open-local');
    const r = await store.reserve('k', { requestId: 'a', tokens: 10 }, policy, clock());
    assert.equal(r.allowed, true);
    assert.deepEqual(store.stats(), { storeErrors: 0, outages: 0, degraded: false, pendingSettlements: 0 });
  });

  it('fail-open-local: enforces limit / divisor locally, logs the outage once, counts every error', async () => {
    const { store, primary, clock, lines } = setup('fail-open-local', 3);
    primary.mode = 'disconnected';
    let allowed = 0;
    for (let i = 0; i < 50; i++) {
      const r = await store.reserve('k', { requestId: `r${i}`, tokens: 10 }, policy, clock());
      if (r.allowed) allowed++;
      else {
        assert.equal(r.deniedBy, 'requests');
        assert.equal(r.retryable, true);
        // Headers keep showing the tier's limit; remaining is the local share's.
        assert.equal(r.requests.limit, 60);
        assert.equal(r.requests.remaining, 0);
      }
      clock.advance(10);
    }
    assert.equal(allowed, 20);
    assert.equal(primary.calls, 0, 'a disconnected client is not even tried');
    assert.deepEqual(store.stats(), { storeErrors: 50, outages: 1, degraded: true, pendingSettlements: 0 });
    assert.equal(lines().filter((l) => l['level'] === 50).length, 1, 'one error line per outage');

    primary.mode = 'up';
    const back = await store.reserve('k', { requestId: 'after', tokens: 10 }, policy, clock());
    assert.equal(back.allowed, true);
    assert.equal(back.requests.used, 1, 'decided by Redis again');
    assert.equal(store.stats().degraded, false);
    assert.equal(lines().filter((l) => String(l['msg']).includes('reachable again')).length, 1);
  });

  it('a hanging Redis costs each decision about the timeout, not more', async () => {
    const { store, primary, clock } = setup('fail-open-local');
    primary.mode = 'hanging';
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      const r = await store.reserve('k', { requestId: `h${i}`, tokens: 1 }, policy, clock());
      const ms = performance.now() - started;
      assert.equal(r.allowed, true);
      assert.ok(ms >= 45 && ms < 100, `decision took ${ms} ms`);
    }
    assert.equal(store.stats().storeErrors, 5);
  });

  it('fail-closed: refuses, retryable after 1 s; an estimate above the tier stays non-retryable', async () => {
    const { store, primary, clock } = setup('fail-closed');
    primary.mode = 'erroring';
    const r = await store.reserve('k', { requestId: 'a', tokens: 10 }, policy, clock());
    assert.deepEqual([r.allowed, r.deniedBy, r.retryable, r.retryAfterMs], [false, 'requests', true, OUTAGE_RETRY_AFTER_MS]);
    assert.equal(r.requests.remaining, 0);
    const big = await store.reserve('k', { requestId: 'b', tokens: 50_001 }, policy, clock());
    assert.deepEqual([big.allowed, big.deniedBy, big.retryable, big.retryAfterMs], [false, 'tokens', false, 0]);
    const peek = await store.peek('k', policy, clock());
    assert.equal(peek.requests.remaining, 0);
  });

  it('fail-open-local: an estimate that fits the tier but not the local share is retryable', async () => {
    const { store, primary, clock } = setup('fail-open-local', 3);
    primary.mode = 'erroring';
    const r = await store.reserve('k', { requestId: 'a', tokens: 20_000 }, policy, clock());
    assert.deepEqual([r.allowed, r.retryable, r.retryAfterMs], [false, true, OUTAGE_RETRY_AFTER_MS]);
  });

  it('replays settlements that could not reach Redis once it is back, in their own window', async () => {
    const { store, primary, clock } = setup('fail-open-local');
    await store.reserve('k', { requestId: 'a', tokens: 1_000 }, policy, clock());
    await store.reserve('k', { requestId: 'old', tokens: 1_000 }, policy, clock());
    primary.mode = 'erroring';
    const s = await store.settle('k', { requestId: 'a', tokens: 100 }, policy, clock());
    assert.equal(s.applied, false);
    assert.equal(store.stats().pendingSettlements, 1);
    primary.mode = 'up';
    clock.advance(1_000);
    await store.peek('k', policy, clock()); // first success → recovery → replay
    await new Promise((r) => setImmediate(r));
    assert.equal(store.stats().pendingSettlements, 0);
    const after = await store.peek('k', policy, clock());
    assert.equal(after.tokens.used, 1_100, 'the refund of 900 landed');
    // Settling again is a no-op (idempotent), through Redis.
    assert.equal((await store.settle('k', { requestId: 'a', tokens: 5 }, policy, clock())).applied, false);
  });

  it('drops a pending settlement whose reservation has left the window', async () => {
    const { store, primary, clock } = setup('fail-open-local');
    await store.reserve('k', { requestId: 'a', tokens: 1_000 }, policy, clock());
    primary.mode = 'erroring';
    await store.settle('k', { requestId: 'a', tokens: 0 }, policy, clock());
    clock.advance(WINDOW_MS);
    primary.mode = 'up';
    const callsBefore = primary.calls;
    await store.peek('k', policy, clock());
    await new Promise((r) => setImmediate(r));
    assert.equal(store.stats().pendingSettlements, 0);
    assert.equal(primary.calls, callsBefore + 1, 'no replay call for an expired reservation');
  });

  it('settles a reservation made locally during an outage after Redis is back', async () => {
    const { store, primary, clock } = setup('fail-open-local');
    primary.mode = 'disconnected';
    assert.equal((await store.reserve('k', { requestId: 'x', tokens: 500 }, policy, clock())).allowed, true);
    primary.mode = 'up';
    const s = await store.settle('k', { requestId: 'x', tokens: 50 }, policy, clock());
    assert.equal(s.applied, true);
    assert.equal(s.tokens.used, 50);
  });
});

describe('withLagAwareTimeout', () => {
  it('rejects a call that does not answer in time', async () => {
    const started = performance.now();
    await assert.rejects(withLagAwareTimeout(new Promise(() => {}), 30), /exceeded 30 ms/);
    assert.ok(performance.now() - started < 80);
  });
});
