/**
 * The Redis budget (QUOTA_REDIS_TIMEOUT_MS) is lag-aware: a reply that reached the socket while
 * this process's event loop was blocked past the budget is still used, so a busy replica does not
 * fall back to local limits while Redis is healthy (see failover-store.ts withLagAwareTimeout).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { manualClock } from '../../services/quota/src/clock.js';
import { createFailoverStore } from '../../services/quota/src/failover-store.js';
import { createRedisStore } from '../../services/quota/src/stores/redis.js';
import { WINDOW_MS } from '../../services/quota/src/stores/store.js';
import { SHARED_REDIS_URL, deletePrefix, randomPrefix, silentLogger } from './helpers.js';

describe('lag-aware Redis budget', () => {
  it('uses a reply that arrived while the event loop was blocked beyond the budget', async () => {
    const prefix = randomPrefix();
    const primary = createRedisStore(SHARED_REDIS_URL, { prefix, commandTimeoutMs: 20 });
    assert.ok(await primary.waitReady(5_000));
    const clock = manualClock(Date.now());
    const store = createFailoverStore({ primary, policy: 'fail-closed', localDivisor: 1, timeoutMs: 20, logger: silentLogger(), clock });
    const policy = { requests: 5, tokens: 1_000, windowMs: WINDOW_MS };
    try {
      for (let i = 0; i < 5; i++) {
        const pending = store.reserve('k', { requestId: `r${i}`, tokens: 1 }, policy, clock());
        const end = performance.now() + 80;
        while (performance.now() < end) {
          // A busy replica: 80 ms of synchronous work while Redis answers in well under 1 ms.
        }
        const r = await pending;
        assert.equal(r.allowed, true, `call ${i} decided by Redis, not refused by fail-closed`);
      }
      assert.equal(store.stats().storeErrors, 0);
    } finally {
      await store.close();
      await deletePrefix(SHARED_REDIS_URL, prefix);
    }
  });
});
