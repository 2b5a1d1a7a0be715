import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_BACKOFF, nextCrashCount, restartDelay } from './backoff.js';

describe('restart backoff', () => {
  it('doubles from 250 ms per consecutive crash and stops at 10 s', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 8, 50].map((n) => restartDelay(n, DEFAULT_BACKOFF));
    assert.deepEqual(delays, [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
  });

  it('starts over after a child stayed up 30 s', () => {
    let crashes = 0;
    for (let i = 0; i < 5; i++) crashes = nextCrashCount(crashes, 1000, DEFAULT_BACKOFF);
    assert.equal(crashes, 5, 'quick crashes keep counting');
    assert.equal(nextCrashCount(crashes, 29_999, DEFAULT_BACKOFF), 6);
    assert.equal(nextCrashCount(crashes, 30_000, DEFAULT_BACKOFF), 1, 'a long run resets the streak');
  });
});
