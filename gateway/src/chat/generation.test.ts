import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FinishReason, type GenerateResponse } from '../../../gen/xerotier/inference/v1/inference_service.js';
import { relay } from './generation.js';

const delta = (text: string): GenerateResponse => ({ delta: { text, reasoning: '', tokenCount: 1, toolCalls: [] } });
const final: GenerateResponse = { final: { finishReason: FinishReason.FINISH_REASON_STOP, usage: { promptTokens: 3, completionTokens: 2 } } };

/** A call's remaining messages; its end (done) arrives only when `end()` is called. */
function call(messages: GenerateResponse[]) {
  const log: string[] = [];
  let end: (() => void) | undefined;
  const ended = new Promise<void>((resolve) => (end = resolve));
  const rest: AsyncIterator<GenerateResponse> = {
    async next() {
      const m = messages.shift();
      if (m) return { done: false, value: m };
      await ended;
      log.push('end read');
      return { done: true, value: undefined };
    },
    async return() {
      log.push('return');
      return { done: true, value: undefined };
    },
  };
  return { rest, log, end: () => end?.() };
}

describe('relay', () => {
  it('hands the final over before the call has ended, and reads the end before letting go', async () => {
    const c = call([delta('b'), final]);
    const seen: GenerateResponse[] = [];
    const events = relay(delta('a'), c.rest, (e) => seen.push(e));
    const got: GenerateResponse[] = [];
    for await (const e of events) {
      got.push(e);
      if (e.final) {
        assert.deepEqual(c.log, [], 'the final arrived while the call had not ended');
        setTimeout(() => c.end(), 20);
        break; // as the renderers do once the response is written
      }
    }
    assert.deepEqual(c.log, ['end read', 'return'], 'the end was read before the call was let go');
    assert.deepEqual(got, [delta('a'), delta('b'), final]);
    assert.deepEqual(seen, got);
  });

  it('lets go of a call at once when the caller leaves before the final', async () => {
    const c = call([delta('b'), final]);
    for await (const e of relay(delta('a'), c.rest, () => undefined)) {
      if (e.delta) break;
    }
    assert.deepEqual(c.log, ['return'], 'no wait for the end of a call left early');
  });
});
