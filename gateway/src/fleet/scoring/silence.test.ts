import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silenceLevel } from './silence.js';

describe('silence level (when a worker counts as not heard from)', () => {
  const s = { afterRequests: 10, afterMs: 1000, maxMs: 30_000 };

  it('needs both the missed requests and the floor of time', () => {
    assert.equal(silenceLevel(s, 10, 1000), 1);
    assert.ok(silenceLevel(s, 9, 5000) < 1, 'too few missed requests, however long');
    assert.ok(silenceLevel(s, 50, 999) < 1, 'many missed requests, but not for the floor of time');
    assert.equal(silenceLevel(s, 20, 5000), 2, 'twice the threshold on both');
  });

  it('the ceiling makes a worker silent by time alone; never heard from is infinitely silent', () => {
    assert.equal(silenceLevel(s, 0, 30_000), 1);
    assert.ok(silenceLevel({ ...s, maxMs: 0 }, 0, 1e9) < 1, 'no ceiling: no silence without missed requests');
    assert.equal(silenceLevel(s, 0, undefined), Number.POSITIVE_INFINITY);
  });

  it('a zero threshold drops that condition: by time alone, or by the count alone', () => {
    assert.equal(silenceLevel({ afterRequests: 0, afterMs: 2000, maxMs: 0 }, 0, 4000), 2);
    assert.equal(silenceLevel({ afterRequests: 4, afterMs: 0, maxMs: 0 }, 2, 1), 0.5);
  });
});
