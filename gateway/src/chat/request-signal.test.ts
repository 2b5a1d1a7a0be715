/**
 * The request signal: which limit ended a request (deadline, idle stream, client gone, shutdown),
 * that events keep an idle stream alive, and that nothing fires after dispose. Real timers with
 * short limits; only outcomes are asserted, never how long they took.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRequestSignal, type RequestSignal } from './request-signal.js';

function start(remainingMs: number, extra: { clientGone?: AbortController; shutdown?: AbortController } = {}) {
  const clientGone = extra.clientGone ?? new AbortController();
  const shutdown = extra.shutdown ?? new AbortController();
  return createRequestSignal({ remainingMs, clientGone: clientGone.signal, shutdown: shutdown.signal });
}

async function ended(s: RequestSignal): Promise<unknown> {
  if (!s.signal.aborted) await once(s.signal, 'abort');
  return s.reason();
}

describe('request signal', () => {
  it('ends the request at its deadline', async () => {
    const s = start(20);
    assert.equal(s.reason(), undefined);
    assert.equal(await ended(s), 'request_timeout');
    s.dispose();
  });

  it('ends a silent stream at the idle limit, before a later deadline', async () => {
    const s = start(60_000);
    s.watchIdle(20);
    assert.equal(await ended(s), 'idle_timeout');
    s.dispose();
  });

  it('keeps a stream whose events come more often than the idle limit', async () => {
    const s = start(60_000);
    s.watchIdle(150);
    for (let i = 0; i < 30; i++) {
      await sleep(15);
      s.touch();
    }
    assert.equal(s.signal.aborted, false);
    assert.equal(s.reason(), undefined);
    // Silence after the events: the idle limit still applies.
    assert.equal(await ended(s), 'idle_timeout');
    s.dispose();
  });

  it('reports the deadline when it comes before the idle limit', async () => {
    const s = start(20);
    s.watchIdle(60_000);
    assert.equal(await ended(s), 'request_timeout');
    s.dispose();
  });

  it('says client_gone or shutdown when those come first', async () => {
    const clientGone = new AbortController();
    const a = start(60_000, { clientGone });
    clientGone.abort(new Error('closed'));
    assert.equal(await ended(a), 'client_gone');
    a.dispose();

    const shutdown = new AbortController();
    const b = start(60_000, { shutdown });
    shutdown.abort(new Error('drain over'));
    assert.equal(await ended(b), 'shutdown');
    b.dispose();
  });

  it('fires nothing and stops listening after dispose', async () => {
    const clientGone = new AbortController();
    const shutdown = new AbortController();
    const s = start(20, { clientGone, shutdown });
    s.watchIdle(10);
    s.dispose();
    await sleep(60);
    clientGone.abort();
    shutdown.abort();
    assert.equal(s.signal.aborted, false);
  });

  it('carries the deadline as a wall-clock Date', () => {
    const before = Date.now();
    const s = start(5_000);
    assert.ok(s.deadline.getTime() >= before + 5_000 && s.deadline.getTime() <= Date.now() + 5_000);
    s.dispose();
  });
});
