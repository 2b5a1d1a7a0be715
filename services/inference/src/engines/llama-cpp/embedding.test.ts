/** The llama-cpp engine's embeddings and raw-prompt completions, on the tiny generated model. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLlamaCppEngine, type LlamaCppEngine } from './llama-cpp-engine.js';
import { collect, CONTEXT_WINDOW, silent } from '../../../../../test/helpers/llama-engine-kit.js';
import { writeTinyGguf } from './tiny-gguf.js';

const dot = (a: number[], b: number[]): number => a.reduce((sum, v, i) => sum + v * (b[i] ?? 0), 0);

describe('llama-cpp engine: embeddings and raw prompts (tiny model)', () => {
  let dir: string;
  let engine: LlamaCppEngine;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'llama-cpp-embed-'));
    const modelPath = join(dir, 'tiny.gguf');
    await writeTinyGguf(modelPath);
    engine = createLlamaCppEngine({ modelPath, allowDownload: false, gpu: 'cpu', threads: 1, parallel: 1 }, { logger: silent });
    await engine.start();
  });

  after(async () => {
    await engine?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('embeds a batch: one unit vector per input, in order, deterministic, tokens counted', async () => {
    const signal = new AbortController().signal;
    const result = await engine.embed({ requestId: 't', inputs: ['abc', 'xyz', 'abc'] }, signal);
    assert.equal(result.embeddings.length, 3);
    const [a, x, a2] = result.embeddings as [number[], number[], number[]];
    assert.ok(a.length > 0);
    assert.equal(x.length, a.length);
    for (const v of result.embeddings) assert.ok(Math.abs(Math.sqrt(dot(v, v)) - 1) < 1e-5, 'L2-normalized');
    assert.deepEqual(a2, a, 'the same text gives the same vector');
    assert.notDeepEqual(x, a, 'different texts give different vectors');
    // Each ASCII character is one token of the tiny vocabulary, plus the BOS/EOS the model adds.
    const single = await engine.embed({ requestId: 't', inputs: ['abc'] }, signal);
    assert.equal(result.promptTokens, 3 * single.promptTokens);
    assert.ok(single.promptTokens >= 3 && single.promptTokens <= 5, `abc took ${single.promptTokens} tokens`);
  });

  it('honours dimensions only when it is the model size, and refuses the rest naming the param', async () => {
    const signal = new AbortController().signal;
    const size = (await engine.embed({ requestId: 't', inputs: ['a'] }, signal)).embeddings[0]!.length;
    assert.equal((await engine.embed({ requestId: 't', inputs: ['a'], dimensions: size }, signal)).embeddings[0]!.length, size);
    await assert.rejects(engine.embed({ requestId: 't', inputs: ['a'], dimensions: 3 }, signal), { kind: 'invalid_request', param: 'dimensions' });
  });

  it('refuses an input longer than the context, naming input', async () => {
    const signal = new AbortController().signal;
    await assert.rejects(engine.embed({ requestId: 't', inputs: ['ok', 'x'.repeat(CONTEXT_WINDOW + 5)] }, signal), {
      kind: 'invalid_request',
      code: 'context_length_exceeded',
      param: 'input',
    });
  });

  it('continues a raw prompt without a chat template: the successor of each character', async () => {
    assert.equal(await engine.countPromptTokens([], undefined, 'Hello'), 1 + 5); // BOS + one token per character
    const result = await collect(engine, { messages: [], prompt: 'Hello', maxTokens: 5 });
    assert.equal(result.text, 'pqrst');
    assert.equal(result.finishReason, 'length');
    assert.equal(result.promptTokens, 6);
    assert.equal(result.completionTokens, 5);
  });

  it('stops a raw-prompt completion at a stop sequence', async () => {
    const result = await collect(engine, { messages: [], prompt: 'a', stop: ['e'] });
    assert.equal(result.text, 'bcd');
    assert.equal(result.finishReason, 'stop');
  });
});
