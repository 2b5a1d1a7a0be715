/**
 * The tunnel client alone: calls are tagged and routed by id, leaving a call early sends one
 * cancel, the deadline ends a call as a timeout, a closed tunnel fails its open calls, and what a
 * worker reports as an error is bounded before it reaches a client.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError, isAppError } from '../../../../lib/errors/app-error.js';
import { CallCancel } from '../../../../lib/grpc/call-cancel.js';
import { createTunnelClient, fromTunnelError, type CallRequest } from './tunnel-client.js';

const request = { requestId: 'r', messages: [{ role: 3, content: 'hi', name: '' }], stop: [] };

describe('tunnel client', () => {
  it('routes events by call id and sends a cancel only when the caller leaves early', async () => {
    const sent: CallRequest[] = [];
    const tunnel = createTunnelClient((m) => sent.push(m));
    const a = tunnel.client.generate(request)[Symbol.asyncIterator]();
    const b = tunnel.client.generate(request)[Symbol.asyncIterator]();
    const firstA = a.next();
    const firstB = b.next();
    await new Promise((r) => setImmediate(r));
    const [idA, idB] = sent.map((m) => m.generate?.callId);
    assert.ok(idA && idB && idA !== idB);
    tunnel.receive({ callEvent: { callId: idB, response: { delta: { text: 'b', tokenCount: 1 } } } } as never);
    tunnel.receive({ callEvent: { callId: idA, response: { delta: { text: 'a', tokenCount: 1 } } } } as never);
    assert.equal((await firstA).value?.delta?.text, 'a');
    assert.equal((await firstB).value?.delta?.text, 'b');
    tunnel.receive({ callEnd: idA } as never);
    assert.equal((await a.next()).done, true);
    await b.return?.(undefined);
    assert.deepEqual(
      sent.filter((m) => m.cancel !== undefined).map((m) => m.cancel),
      [idB],
      'one cancel, for the call left early',
    );
    assert.equal(tunnel.openCalls(), 0);
  });

  it('ends a call at its deadline as a timeout, and fails open calls when the tunnel closes', async () => {
    const sent: CallRequest[] = [];
    const tunnel = createTunnelClient((m) => sent.push(m));
    const late = tunnel.client.generate(request, { deadline: 50 })[Symbol.asyncIterator]();
    await assert.rejects(late.next(), (err: unknown) => isAppError(err) && err.kind === 'timeout');
    assert.ok(sent[0]?.generate?.deadline instanceof Date, 'the deadline travels with the call');
    assert.equal(sent.at(-1)?.cancel, sent[0]?.generate?.callId);

    const open = tunnel.client.generate(request)[Symbol.asyncIterator]();
    const pending = open.next();
    tunnel.close(new AppError('unavailable', 'gone', { code: 'no_healthy_worker' }));
    await assert.rejects(pending, (err: unknown) => isAppError(err) && err.code === 'no_healthy_worker');
    await assert.rejects(tunnel.client.generate(request)[Symbol.asyncIterator]().next(), (err: unknown) => isAppError(err) && err.code === 'no_healthy_worker');
  });

  it('stops a call waiting for its first event when its CallCancel fires (time-to-first-token timeout, client gone)', async () => {
    const sent: CallRequest[] = [];
    const tunnel = createTunnelClient((m) => sent.push(m));
    const cancel = new CallCancel();
    const call = tunnel.client.generate(request, { cancel })[Symbol.asyncIterator]();
    const first = call.next();
    await new Promise((r) => setImmediate(r));
    cancel.abort(new Error('ttft timeout'));
    await assert.rejects(first, (err: unknown) => isAppError(err) && err.kind === 'cancelled');
    assert.equal(sent.at(-1)?.cancel, sent[0]?.generate?.callId, 'the worker is told to stop');
    assert.equal(tunnel.openCalls(), 0);
  });

  it('with a window, grants credit back as its caller reads, half a window at a time', async () => {
    const sent: CallRequest[] = [];
    const tunnel = createTunnelClient((m) => sent.push(m), 4);
    const call = tunnel.client.generate(request)[Symbol.asyncIterator]();
    const first = call.next();
    await new Promise((r) => setImmediate(r));
    const callId = sent[0]!.generate!.callId;
    assert.equal(sent[0]!.generate!.window, 4);
    for (let i = 0; i < 4; i++) tunnel.receive({ callEvent: { callId, response: { delta: { text: `${i}`, tokenCount: 1 } } } } as never);
    await first;
    assert.equal(sent.filter((m) => m.credit).length, 0, 'no credit before half the window was read');
    await call.next();
    assert.deepEqual(sent.at(-1)?.credit, { callId, events: 2 });
    await call.next();
    await call.next();
    assert.deepEqual(sent.filter((m) => m.credit).map((m) => m.credit?.events), [2, 2]);
    await call.return?.(undefined);
  });

  it("bounds a worker's error report", () => {
    const internal = fromTunnelError({ kind: 'internal', code: 'x', message: 'stack at /home/me/secret.js', param: '', retryAfterSeconds: 0 });
    assert.equal(internal.message, 'inference worker failed');
    const unknownKind = fromTunnelError({ kind: 'rm -rf', code: 'Bad Code!', message: 'm', param: '', retryAfterSeconds: 99_999 });
    assert.equal(unknownKind.kind, 'internal');
    assert.notEqual(unknownKind.code, 'Bad Code!');
    const busy = fromTunnelError({ kind: 'unavailable', code: 'capacity_exceeded', message: 'x'.repeat(2000), param: '', retryAfterSeconds: 99_999 });
    assert.equal(busy.code, 'capacity_exceeded');
    assert.equal(busy.message.length, 500);
    assert.equal(busy.retryAfterSeconds, 3600);
  });
});
