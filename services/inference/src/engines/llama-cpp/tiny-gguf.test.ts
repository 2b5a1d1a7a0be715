/** The tiny GGUF writer: deterministic bytes, and the successor pattern under node-llama-cpp directly. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LlamaCompletion, getLlama } from 'node-llama-cpp';
import { buildTinyGguf, writeTinyGguf } from './tiny-gguf.js';

describe('tiny GGUF generator', () => {
  it('is byte-for-byte deterministic and seed-dependent', () => {
    const first = buildTinyGguf();
    assert.equal(first.length, 438_656);
    assert.ok(first.equals(buildTinyGguf()));
    assert.ok(first.subarray(0, 4).equals(Buffer.from('GGUF')));
    assert.ok(!first.equals(buildTinyGguf({ seed: 99 })));
  });
});

describe('tiny GGUF raw completions (node-llama-cpp directly)', () => {
  it('continues " " with the next 32 ASCII characters and stops "v" at EOS', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tiny-gguf-'));
    const llama = await getLlama({ gpu: false, build: 'never' });
    try {
      const modelPath = join(dir, 'tiny.gguf');
      await writeTinyGguf(modelPath);
      const model = await llama.loadModel({ modelPath });
      const context = await model.createContext({ contextSize: 512, threads: 1 });
      const completion = new LlamaCompletion({ contextSequence: context.getSequence() });
      const space = await completion.generateCompletionWithMeta(' ', { maxTokens: 32 });
      assert.equal(space.response, '!"#$%&\'()*+,-./0123456789:;<=>?@');
      assert.equal(space.metadata.stopReason, 'maxTokens');
      const v = await completion.generateCompletionWithMeta('v', { maxTokens: 32 });
      assert.equal(v.response, 'wxyz{|}~');
      assert.equal(v.metadata.stopReason, 'eogToken');
    } finally {
      await llama.dispose(); // disposes the model and context too
      await rm(dir, { recursive: true, force: true });
    }
  });
});
