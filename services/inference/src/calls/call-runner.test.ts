/**
 * The call runner alone, on a scripted Generate handler: with a window, a call sends at most that
 * many events before it waits for credit, and the handler is not pulled meanwhile (the generation
 * waits with it); credit lets it go on; a cancel while it waits stops the handler without an
 * answer; without a window it sends as fast as the handler yields.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { GenerateRequest } from '../../../../gen/xerotier/inference/v1/inference_service.js';
import { CallRunner, type CallReport, type GenerateHandler } from './call-runner.js';

/** A handler yielding `count` deltas, counting how many it was asked for and whether it was stopped. */
function scripted(count: number) {
  const seen = { pulled: 0, stopped: false };
  const generate: GenerateHandler = async function* (_request, context) {
    try {
      for (let i = 0; i < count; i++) {
        if (context.signal.aborted) return;
        seen.pulled += 1;
        yield { delta: { text: `${i}`, tokenCount: 1 } };
      }
    } finally {
      seen.stopped = context.signal.aborted;
    }
  };
  return { generate, seen };
}

const settle = () => new Promise((r) => setTimeout(r, 20));

/**
 * A runner over a handler yielding `count` deltas, with call `c1` started (with `window`, if
 * given): what it sent, what the handler saw, and the runner.
 */
function setup(count: number, window?: number) {
  const sent: CallReport[] = [];
  const { generate, seen } = scripted(count);
  const runner = new CallRunner(generate, pino({ level: 'silent' }), (m) => sent.push(m), 'test', 'test');
  runner.start({ callId: 'c1', request: GenerateRequest.fromPartial({ requestId: 'r1' }), deadline: undefined, requestId: 'r1', window });
  return { sent, seen, runner };
}

describe('call runner', () => {
  it('with a window, waits for credit before sending more, and the handler waits with it', async () => {
    const { sent, seen, runner } = setup(10, 3);
    await settle();
    assert.equal(sent.filter((m) => m.callEvent).length, 3, 'a window of events, no more');
    assert.ok(seen.pulled <= 4, `the handler is not drained while the call waits (pulled ${seen.pulled})`);
    runner.credit('c1', 3);
    await settle();
    assert.equal(sent.filter((m) => m.callEvent).length, 6);
    runner.credit('c1', 100);
    await settle();
    assert.equal(sent.filter((m) => m.callEvent).length, 10);
    assert.equal(sent.at(-1)?.callEnd, 'c1');
    assert.equal(runner.running, 0);
  });

  it('a cancel while waiting for credit stops the handler and sends nothing more', async () => {
    const { sent, seen, runner } = setup(10, 2);
    await settle();
    runner.cancel('c1');
    await settle();
    assert.equal(sent.length, 2, 'no end and no error for a cancelled call');
    assert.ok(seen.stopped, 'the handler saw its signal aborted');
    assert.equal(runner.running, 0);
  });

  it('without a window, sends as fast as the handler yields', async () => {
    const { sent, runner } = setup(50);
    await settle();
    assert.equal(sent.filter((m) => m.callEvent).length, 50);
    assert.equal(sent.at(-1)?.callEnd, 'c1');
    assert.equal(runner.running, 0);
  });
});
