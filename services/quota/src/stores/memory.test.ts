import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { runScenario, scenarioArb } from '../../../../test/quota/model-harness.js';
import { createMemoryStore } from './memory.js';
import { WINDOW_MS, type LimitPolicy } from './store.js';

const policy: LimitPolicy = { requests: 3, tokens: 1_000, windowMs: WINDOW_MS };
const T0 = 1_700_000_000_000;

describe('memory store', () => {
  it('equals the reference model and keeps the bound (fast-check, 3,000 runs)', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (scenario) => {
        await runScenario(createMemoryStore(), scenario, `run${run++}`);
      }),
      { numRuns: 3_000 },
    );
  });

  it('admits the limit, then refuses with the exact time until the oldest leaves the window', async () => {
    const store = createMemoryStore();
    for (let i = 0; i < 3; i++) {
      const r = await store.reserve('k', { requestId: `a${i}`, tokens: 10 }, policy, T0 + i * 1_000);
      assert.equal(r.allowed, true);
      assert.equal(r.requests.remaining, 2 - i);
    }
    const denied = await store.reserve('k', { requestId: 'a3', tokens: 10 }, policy, T0 + 10_000);
    assert.equal(denied.allowed, false);
    assert.equal(denied.deniedBy, 'requests');
    assert.equal(denied.retryAfterMs, 50_000);
    assert.equal(denied.requests.resetAt, T0 + 2_000 + WINDOW_MS);
    const later = await store.reserve('k', { requestId: 'a3', tokens: 10 }, policy, T0 + 60_000);
    assert.equal(later.allowed, true);
  });

  it('refuses an estimate above the tokens limit for good', async () => {
    const r = await createMemoryStore().reserve('k', { requestId: 'x', tokens: 1_001 }, policy, T0);
    assert.deepEqual([r.allowed, r.deniedBy, r.retryable, r.retryAfterMs], [false, 'tokens', false, 0]);
  });

  it('drops scopes whose window is empty', async () => {
    const store = createMemoryStore();
    await store.reserve('k', { requestId: 'x', tokens: 1 }, policy, T0);
    assert.equal(store.size(), 1);
    await store.peek('k', policy, T0 + WINDOW_MS);
    assert.equal(store.size(), 0);
  });
});
