import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chatChunk, chunkFrame, framedDelta } from './chunk-frame.js';

const meta = { id: 'chatcmpl-1', created: 1_760_000_000, model: 'm "quoted"', fingerprint: 'fp_1' };

test('head + delta + tail is the JSON of the whole chunk, with and without usage', () => {
  for (const includeUsage of [false, true]) {
    const frame = chunkFrame(meta, includeUsage);
    const { head, tail } = frame;
    for (const delta of [{}, { content: 'hi "there"\n' }, { role: 'assistant', content: '' }, { tool_calls: [{ index: 0, function: { arguments: '{}' } }] }]) {
      assert.equal(`${head}${JSON.stringify(delta)}${tail}`, JSON.stringify(chatChunk(meta, delta, null, includeUsage)));
      assert.equal(framedDelta(frame, delta), JSON.stringify(chatChunk(meta, delta, null, includeUsage)));
    }
  }
});

test('a chunk carries usage: null only when the stream reports usage', () => {
  assert.equal('usage' in chatChunk(meta, {}, null, false), false);
  assert.equal(chatChunk(meta, {}, 'stop', true)['usage'], null);
});
