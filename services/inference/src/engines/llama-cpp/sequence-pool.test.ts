import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSequencePool } from './sequence-pool.js';

describe('createSequencePool', () => {
  it('hands out idle items immediately, most recently released first', async () => {
    const pool = createSequencePool(['a', 'b']);
    assert.equal(await pool.acquire(), 'a');
    assert.equal(await pool.acquire(), 'b');
    pool.release('a');
    pool.release('b');
    // LIFO: 'b' was used last, so it is the one most likely to share a cached prefix.
    assert.equal(await pool.acquire(), 'b');
    assert.equal(pool.available, 1);
  });

  it('queues callers when empty and serves them first-in, first-out', async () => {
    const pool = createSequencePool(['only']);
    const first = await pool.acquire();
    const order: string[] = [];
    const w1 = pool.acquire().then((item) => order.push(`w1:${item}`));
    const w2 = pool.acquire().then((item) => order.push(`w2:${item}`));
    assert.equal(pool.waiting, 2);
    pool.release(first);
    await w1;
    pool.release('only');
    await w2;
    assert.deepEqual(order, ['w1:only', 'w2:only']);
  });

  it('rejects a waiting acquire when its signal aborts and forgets the waiter', async () => {
    const pool = createSequencePool([1]);
    const held = await pool.acquire();
    const controller = new AbortController();
    const waiting = pool.acquire(controller.signal);
    controller.abort(new Error('gone'));
    await assert.rejects(waiting, /gone/);
    assert.equal(pool.waiting, 0);
    pool.release(held);
    assert.equal(pool.available, 1);
  });

  it('rejects immediately when the signal is already aborted', async () => {
    const pool = createSequencePool([1]);
    await assert.rejects(pool.acquire(AbortSignal.abort()), { name: 'AbortError' });
    assert.equal(pool.available, 1);
  });

  it('refuses double release', async () => {
    const pool = createSequencePool(['x']);
    const item = await pool.acquire();
    pool.release(item);
    assert.throws(() => pool.release(item), /not leased/);
  });

  it('close() rejects waiters and later acquires', async () => {
    const pool = createSequencePool(['x']);
    const item = await pool.acquire();
    const waiting = pool.acquire();
    pool.close(new Error('shutting down'));
    await assert.rejects(waiting, /shutting down/);
    await assert.rejects(pool.acquire(), /shutting down/);
    pool.release(item); // still allowed, so in-flight work can clean up
    assert.equal(pool.available, 1);
  });
});
