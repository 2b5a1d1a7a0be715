import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AbortHandle } from './abort-handle.js';

describe('AbortHandle', () => {
  it('aborts once: the first reason wins and listeners hear one abort', () => {
    const handle = new AbortHandle();
    let heard = 0;
    handle.once('abort', () => (heard += 1));
    assert.equal(handle.aborted, false);
    const first = new Error('stalled');
    handle.abort(first);
    handle.abort(new Error('later'));
    assert.equal(handle.aborted, true);
    assert.equal(handle.reason, first);
    assert.equal(heard, 1);
  });

  it('gives the standard AbortError when aborted without a reason', () => {
    const handle = new AbortHandle();
    handle.abort();
    assert.ok(handle.reason instanceof DOMException);
    assert.equal((handle.reason as DOMException).name, 'AbortError');
  });
});
