/**
 * The Redis store (real Redis, injected clock passed into the Lua) against the reference model:
 * same outputs for random sequences, same bound. Also the key layout: every key has a TTL ≤ window.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { createRedisStore, type RedisStore } from '../../services/quota/src/stores/redis.js';
import { WINDOW_MS } from '../../services/quota/src/stores/store.js';
import { SHARED_REDIS_URL, deletePrefix, randomPrefix } from './helpers.js';
import { runScenario, scenarioArb } from './model-harness.js';

describe('redis store against the reference model', () => {
  const prefix = randomPrefix();
  let store: RedisStore;

  before(async () => {
    store = createRedisStore(SHARED_REDIS_URL, { prefix, commandTimeoutMs: 1_000 });
    assert.ok(await store.waitReady(5_000), 'redis reachable');
  });
  after(async () => {
    await store.close();
    await deletePrefix(SHARED_REDIS_URL, prefix);
  });

  it('equals the model for random reserve/settle/peek/advance sequences (fast-check, 300 runs)', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (scenario) => {
        await runScenario(store, scenario, `run${run++}`);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps two keys per scope, both with a TTL no longer than the window', async () => {
    const policy = { requests: 5, tokens: 100, windowMs: WINDOW_MS };
    const now = Date.now();
    await store.reserve('ttl', { requestId: 'a', tokens: 10 }, policy, now);
    await store.settle('ttl', { requestId: 'a', tokens: 3 }, policy, now + 10);
    const redis = new Redis(SHARED_REDIS_URL);
    try {
      const [log, hash] = store.keys('ttl');
      for (const key of [log, hash]) {
        const ttl = await redis.pttl(key);
        assert.ok(ttl > 0 && ttl <= WINDOW_MS, `${key} ttl ${ttl}`);
      }
      assert.equal(await redis.hget(hash, ''), '3');
    } finally {
      redis.disconnect();
    }
  });
});
