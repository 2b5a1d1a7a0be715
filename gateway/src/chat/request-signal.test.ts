/**
 * The request signal: which limit ended a request (deadline, idle stream, client gone, shutdown),
 * that events keep an idle stream alive, and that nothing fires after dispose. Real timers with
 * short limits; only outcomes are asserted, never how long they took.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRequestSignal, OpenRequests, type RequestSignal } from './request-signal.js';

function start(remainingMs: number, extra: { clientGone?: AbortController; shutdown?: AbortController } = {}) {
  const clientGone = extra.clientGone ?? new AbortController();
  const shutdown = extra.shutdown ?? new AbortController();
  return createRequestSignal({ remainingMs, clientGone: clientGone.signal, requests: new OpenRequests(shutdown.signal) });
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

  it('keeps the idle checks of many streams with one limit apart: each ends at its own silence', async () => {
    const shutdown = new AbortController();
    const requests = new OpenRequests(shutdown.signal);
    const open = (): RequestSignal => createRequestSignal({ remainingMs: 60_000, clientGone: new AbortController().signal, requests });
    const silent = open();
    const busy = open();
    const disposed = open();
    const late = open();
    silent.watchIdle(100);
    busy.watchIdle(100);
    disposed.watchIdle(100);
    await sleep(50);
    late.watchIdle(100); // its check comes 50 ms after the others'
    disposed.dispose();
    assert.equal(requests.size, 3);
    for (let i = 0; i < 13; i++) {
      await sleep(15);
      busy.touch();
    }
    // Past 200 ms: the silent and the late stream are over, the busy one is not.
    assert.equal(silent.reason(), 'idle_timeout');
    assert.equal(late.reason(), 'idle_timeout');
    assert.equal(busy.reason(), undefined);
    assert.equal(disposed.signal.aborted, false);
    assert.equal(await ended(busy), 'idle_timeout');
    for (const s of [silent, busy, late]) s.dispose();
    assert.equal(requests.size, 0);
  });

  it('ends every open request at shutdown, and a request that starts after it at once', async () => {
    const shutdown = new AbortController();
    const requests = new OpenRequests(shutdown.signal);
    const open = (): RequestSignal => createRequestSignal({ remainingMs: 60_000, clientGone: new AbortController().signal, requests });
    const streams = [open(), open(), open()];
    const done = open();
    done.dispose();
    shutdown.abort(new Error('drain over'));
    for (const s of streams) assert.equal(await ended(s), 'shutdown');
    assert.equal(done.signal.aborted, false);
    const after = open();
    assert.equal(after.signal.aborted, true);
    assert.equal(after.reason(), 'shutdown');
    for (const s of [...streams, after]) s.dispose();
    assert.equal(requests.size, 0);
  });

  it('leaves no timer behind once its requests are disposed', () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const requests = new OpenRequests(new AbortController().signal);
    const open = (): RequestSignal => createRequestSignal({ remainingMs: 60_000, clientGone: new AbortController().signal, requests });
    const a = open();
    const b = open();
    a.watchIdle(60_000);
    b.watchIdle(30_000);
    assert.ok(timers() > before);
    a.dispose();
    b.dispose();
    assert.equal(timers(), before);
  });
});
