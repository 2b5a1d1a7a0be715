import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createPerformanceModel, NO_PERFORMANCE_MODEL } from './performance-model.js';

const BASE = { timeToFirstTokenMs: 100, tokensPerSecond: 50 };

describe('simulator performance model', () => {
  it('a speed factor divides the first-token time and the time between tokens', () => {
    const m = createPerformanceModel({ ...NO_PERFORMANCE_MODEL, speedFactor: 4 });
    assert.deepEqual(m.begin([{ content: 'hi' }], 10, BASE), { firstTokenMs: 25, interTokenMs: 5, cachedPromptTokens: 0 });
  });

  it('degrades by time for a while, then recovers', () => {
    let now = 1_000;
    const m = createPerformanceModel(
      { ...NO_PERFORMANCE_MODEL, speedFactor: 2, degrade: { factor: 5, afterMs: 500, afterRequests: 0, forMs: 300 }, clockOriginMs: 1_000 },
      () => now,
    );
    assert.equal(m.currentSpeed(), 2);
    now = 1_600;
    assert.equal(m.currentSpeed(), 0.4);
    assert.equal(m.begin([{ content: 'x' }], 10, BASE).firstTokenMs, 250);
    now = 1_800;
    assert.equal(m.currentSpeed(), 2);
  });

  it('degrades from the n-th request', () => {
    const m = createPerformanceModel({ ...NO_PERFORMANCE_MODEL, degrade: { factor: 3, afterMs: 0, afterRequests: 3, forMs: 0 } });
    const ttfts = Array.from({ length: 4 }, () => m.begin([{ content: 'x' }], 10, BASE).firstTokenMs);
    assert.deepEqual(ttfts, [100, 100, 300, 300]);
  });

  it('a cached prefix skips its prefill; the cache is bounded', () => {
    const m = createPerformanceModel({ ...NO_PERFORMANCE_MODEL, prefillMsPer1kTokens: 1000, prefixCacheBlocks: 4, prefixBlockChars: 400 });
    const prompt = (prefix: string) => [{ content: prefix.repeat(1600) }, { content: 'question' }];
    const miss = m.begin(prompt('a'), 1000, BASE);
    assert.equal(miss.cachedPromptTokens, 0);
    assert.equal(miss.firstTokenMs, 1100);
    const hit = m.begin(prompt('a'), 1000, BASE);
    assert.equal(hit.cachedPromptTokens, 400); // 4 blocks × 400 characters ÷ 4
    assert.equal(hit.firstTokenMs, 100 + 600);
    m.begin(prompt('b'), 1000, BASE); // evicts a's blocks (4 blocks held)
    assert.equal(m.begin(prompt('a'), 1000, BASE).cachedPromptTokens, 0);
  });
});
