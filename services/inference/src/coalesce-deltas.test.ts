import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Delta, GenerateResponse } from '../../../gen/xerotier/inference/v1/inference_service.js';
import { coalesceDeltas, MAX_JOINED_TOKENS } from './coalesce-deltas.js';

const text = (t: string): GenerateResponse => ({ delta: { text: t, tokenCount: 1, toolCalls: [], reasoning: '' } });
const reasoning = (t: string): GenerateResponse => ({ delta: { text: '', tokenCount: 1, toolCalls: [], reasoning: t } });
const tool = (args: string): GenerateResponse => ({ delta: { text: '', tokenCount: 1, toolCalls: [{ index: 0, id: '', name: '', arguments: args }], reasoning: '' } });
const START: GenerateResponse = { start: { model: 'm', systemFingerprint: '', workerId: 'w', promptTokens: 3 } };
const FINAL: GenerateResponse = { final: { finishReason: 1, usage: { promptTokens: 3, completionTokens: 0 } } };

async function collect(source: AsyncIterable<GenerateResponse>): Promise<GenerateResponse[]> {
  const out: GenerateResponse[] = [];
  for await (const m of coalesceDeltas(source)) out.push(m);
  return out;
}

const deltas = (messages: GenerateResponse[]): Delta[] => messages.flatMap((m) => (m.delta ? [m.delta] : []));

describe('coalesceDeltas', () => {
  it('joins text deltas that are ready together, adding their token counts', async () => {
    async function* source() {
      yield START;
      for (const t of ['a', 'b', 'c', 'd']) yield text(t);
      yield FINAL;
    }
    const out = await collect(source());
    assert.deepEqual(out, [START, { delta: { text: 'abcd', tokenCount: 4, toolCalls: [], reasoning: '' } }, FINAL]);
  });

  it('sends a joined delta once it holds MAX_JOINED_TOKENS, so a long answer ready at once still streams in pieces', async () => {
    const total = MAX_JOINED_TOKENS * 3 + 5;
    async function* source() {
      for (let i = 0; i < total; i++) yield text('x');
      yield FINAL;
    }
    const counts = deltas(await collect(source())).map((d) => d.tokenCount);
    assert.deepEqual(counts, [MAX_JOINED_TOKENS, MAX_JOINED_TOKENS, MAX_JOINED_TOKENS, 5]);
  });

  it('sends deltas produced in different event-loop turns one by one, without waiting for more', async () => {
    async function* source() {
      yield START;
      for (const t of ['a', 'b', 'c']) {
        await sleep(1);
        yield text(t);
      }
      await sleep(5);
      yield FINAL;
    }
    const out = await collect(source());
    assert.deepEqual(deltas(out).map((d) => d.text), ['a', 'b', 'c']);

    // The first delta is out before the source produces its next message.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    async function* slow() {
      yield text('first');
      await gate;
      yield FINAL;
    }
    const iterator = coalesceDeltas(slow());
    assert.deepEqual((await iterator.next()).value, text('first'));
    release();
    assert.deepEqual((await iterator.next()).value, FINAL);
  });

  it('never joins tool-call deltas, nor text with reasoning; order is kept', async () => {
    async function* source() {
      yield reasoning('r1');
      yield reasoning('r2');
      yield text('t1');
      yield text('t2');
      yield tool('{"a"');
      yield tool(':1}');
      yield text('t3');
      yield FINAL;
    }
    const out = deltas(await collect(source()));
    assert.deepEqual(
      out.map((d) => [d.reasoning, d.text, d.toolCalls.map((c) => c.arguments).join(''), d.tokenCount]),
      [
        ['r1r2', '', '', 2],
        ['', 't1t2', '', 2],
        ['', '', '{"a"', 1],
        ['', '', ':1}', 1],
        ['', 't3', '', 1],
      ],
    );
  });

  it('delivers the held tokens before the error of a stream that fails', async () => {
    async function* source(): AsyncGenerator<GenerateResponse> {
      yield START;
      yield text('a');
      yield text('b');
      throw new Error('engine failed');
    }
    const out: GenerateResponse[] = [];
    await assert.rejects(async () => {
      for await (const m of coalesceDeltas(source())) out.push(m);
    }, /engine failed/);
    assert.deepEqual(out, [START, { delta: { text: 'ab', tokenCount: 2, toolCalls: [], reasoning: '' } }]);
  });

  it('ends the source when the consumer stops early, so its cleanup runs', async () => {
    let cleaned = false;
    async function* source() {
      try {
        yield START;
        for (;;) {
          await sleep(1);
          yield text('x');
        }
      } finally {
        cleaned = true;
      }
    }
    for await (const m of coalesceDeltas(source())) if (m.delta) break;
    assert.equal(cleaned, true);
  });
});
