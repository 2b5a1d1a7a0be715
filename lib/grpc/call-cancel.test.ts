/** CallCancel: aborted once, tells its one listener once, refuses a second listener. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CallCancel } from './call-cancel.js';

describe('CallCancel', () => {
  it('is aborted once, with the first reason, and tells its listener once', () => {
    const cancel = new CallCancel();
    let told = 0;
    cancel.addEventListener('abort', { handleEvent: () => (told += 1) });
    assert.equal(cancel.aborted, false);
    const first = new Error('first');
    cancel.abort(first);
    cancel.abort(new Error('second'));
    assert.equal(cancel.aborted, true);
    assert.equal(cancel.reason, first);
    assert.equal(told, 1);
  });

  it('does not tell a listener that was removed', () => {
    const cancel = new CallCancel();
    let told = 0;
    const listener = { handleEvent: () => (told += 1) };
    cancel.addEventListener('abort', listener);
    cancel.removeEventListener('abort', listener);
    cancel.abort('gone');
    assert.equal(told, 0);
  });

  it('refuses a second listener rather than dropping the first', () => {
    const cancel = new CallCancel();
    cancel.addEventListener('abort', { handleEvent: () => undefined });
    assert.throws(() => cancel.addEventListener('abort', { handleEvent: () => undefined }), /one listener/);
  });
});
