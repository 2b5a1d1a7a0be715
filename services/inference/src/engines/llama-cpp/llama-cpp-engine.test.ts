/** The llama-cpp engine on the tiny model: text, stops, roles, concurrency, sampling, cancellation, context. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError } from '../../../../../lib/errors/app-error.js';
import type { ChatMessage, EngineEvent } from '../engine.js';
import { createLlamaCppEngine, type LlamaCppEngine } from './llama-cpp-engine.js';
import { toChatHistory } from './prompt.js';
import { collect, CONTEXT_WINDOW, FULL_REPLY, HI, HI_PROMPT_TOKENS, params, silent, USER_FRAME_TOKENS, userMessageOfTokens } from '../../../../../test/helpers/llama-engine-kit.js';
import { writeTinyGguf } from './tiny-gguf.js';

describe('llama-cpp engine on the tiny model', () => {
  let dir: string;
  let modelPath: string;
  let engine: LlamaCppEngine;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'llama-cpp-engine-'));
    modelPath = join(dir, 'tiny.gguf');
    await writeTinyGguf(modelPath);
    engine = createLlamaCppEngine(
      { modelPath, allowDownload: false, gpu: 'cpu', threads: 1, parallel: 2 },
      { logger: silent },
    );
    assert.equal(engine.ready(), false);
    await engine.start();
  });

  after(async () => {
    await engine?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reports info and hardware', () => {
    assert.equal(engine.ready(), true);
    const info = engine.info();
    assert.equal(info.engine, 'llama-cpp');
    assert.equal(info.model, 'xerotier-tiny-successor');
    assert.match(info.fingerprint, /^fp_llamacpp_[0-9a-f]{10}$/);
    assert.equal(info.contextWindow, CONTEXT_WINDOW);
    assert.match(info.backend, /^llama\.cpp \S+ cpu, 1 threads, 2 sequences$/);
    const hardware = engine.hardware();
    assert.equal(hardware.gpu, false);
    assert.deepEqual(hardware.gpuDevices, []);
    assert.match(hardware.cpuFeatures, /CPU/);
  });

  it('greedy chat reply walks the ASCII table and stops at EOS', async (t) => {
    assert.equal(await engine.countPromptTokens(HI), HI_PROMPT_TOKENS);
    const startedAt = performance.now();
    const result = await collect(engine);
    const seconds = (performance.now() - startedAt) / 1000;
    t.diagnostic(`${(result.completionTokens / seconds).toFixed(0)} tokens/s (1 stream, 1 thread)`);
    assert.equal(result.text, FULL_REPLY);
    assert.equal(result.finishReason, 'stop');
    assert.equal(result.promptTokens, HI_PROMPT_TOKENS);
    // 62 visible tokens + the sampled <|im_end|>, which is counted but never emitted.
    assert.equal(result.completionTokens, 63);
    assert.equal(result.deltas.length, 62); // streamed one token at a time
    assert.ok(result.deltas.every((d) => d.tokenCount === 1));
  });

  it('stops at maxTokens with finishReason length and exactly N tokens', async () => {
    for (const maxTokens of [1, 5, 32]) {
      const result = await collect(engine, { maxTokens });
      assert.equal(result.text, FULL_REPLY.slice(0, maxTokens));
      assert.equal(result.finishReason, 'length');
      assert.equal(result.completionTokens, maxTokens);
      assert.equal(result.promptTokens, HI_PROMPT_TOKENS);
    }
  });

  it('cuts the text before a stop sequence and does not emit it', async () => {
    const multi = await collect(engine, { stop: ['KLM'] });
    assert.equal(multi.text, 'ABCDEFGHIJ');
    assert.equal(multi.finishReason, 'stop');
    assert.equal(multi.completionTokens, 13); // A..M were sampled
    assert.equal(
      multi.deltas.reduce((sum, d) => sum + d.tokenCount, 0),
      10,
    );

    const first = await collect(engine, { stop: ['xyz', 'G'] });
    assert.equal(first.text, 'ABCDEF');
    assert.equal(first.finishReason, 'stop');

    // "K","L" are held back while they could still start "KLX", then released: nothing lost.
    const nearMiss = await collect(engine, { stop: ['KLX'] });
    assert.equal(nearMiss.text, FULL_REPLY);
    assert.equal(nearMiss.finishReason, 'stop');
  });

  it('renders roles with the model template (system+developer merged, tool as user)', async () => {
    assert.deepEqual(
      toChatHistory([
        { role: 'system', content: 'S' },
        { role: 'developer', content: 'D' },
        { role: 'user', content: 'U' },
        { role: 'assistant', content: 'A' },
        { role: 'tool', content: 'T', name: 'f' },
      ]),
      [
        { type: 'system', text: 'S' },
        { type: 'system', text: 'D' },
        { type: 'user', text: 'U' },
        { type: 'model', response: ['A'] },
        { type: 'user', text: 'Tool result (f):\nT' },
        { type: 'model', response: [] },
      ],
    );
    // BOS, <|im_start|>"system\n""S\n\nD"<|im_end|>"\n", user turn "U", assistant header.
    const systemFirst: ChatMessage[] = [
      { role: 'system', content: 'S' },
      { role: 'developer', content: 'D' },
      { role: 'user', content: 'U' },
    ];
    assert.equal(await engine.countPromptTokens(systemFirst), 1 + 14 + 9 + 11);
    // BOS, user "U" (9), assistant "A" (14), tool-as-user "Tool result (f):\nT" (8+18), header (11).
    const withTool: ChatMessage[] = [
      { role: 'user', content: 'U' },
      { role: 'assistant', content: 'A' },
      { role: 'tool', content: 'T', name: 'f' },
    ];
    assert.equal(await engine.countPromptTokens(withTool), 1 + 9 + 14 + 26 + 11);
    const reply = await collect(engine, { messages: withTool, maxTokens: 3 });
    assert.equal(reply.text, 'ABC');
    assert.equal(reply.promptTokens, 61);
  });

  it('treats chat-markup typed by a user as text, not control tokens', async () => {
    const injected: ChatMessage[] = [{ role: 'user', content: '<|im_end|>' }];
    // 10 characters → 10 byte tokens, not the single <|im_end|> control token.
    assert.equal(await engine.countPromptTokens(injected), USER_FRAME_TOKENS + 10);
  });

  it('runs concurrent generations on separate sequences (and queues beyond parallel)', async () => {
    const results = await Promise.all([
      collect(engine),
      collect(engine, { maxTokens: 10 }),
      collect(engine, { stop: ['a'] }), // the third waits for a free sequence
    ]);
    assert.deepEqual(
      results.map((r) => [r.text, r.finishReason]),
      [
        [FULL_REPLY, 'stop'],
        ['ABCDEFGHIJ', 'length'],
        ['ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`', 'stop'],
      ],
    );
  });

  it('is reproducible with a seed at temperature > 0, and varies without one', async () => {
    const sample = (seed?: number) =>
      collect(engine, { temperature: 1, maxTokens: 32, ...(seed === undefined ? {} : { seed }) });
    const a = await sample(42);
    const b = await sample(42);
    const c = await sample(7);
    assert.equal(a.text, b.text);
    assert.equal(a.completionTokens, b.completionTokens);
    // Deterministic for this model file: seed 7 samples a different path than seed 42.
    assert.notEqual(a.text, c.text);
    // Without a seed each request draws a fresh one (node-llama-cpp would default to the clock).
    const hot = () => collect(engine, { temperature: 2, maxTokens: 32 });
    const [x, y] = [await hot(), await hot()];
    assert.notEqual(x.text, y.text);
  });

  it('cancels within 100 ms when the signal aborts, then serves the next request', async (t) => {
    const controller = new AbortController();
    let deltas = 0;
    let abortedAt = 0;
    let final: EngineEvent | undefined;
    for await (const event of engine.generate(params(), controller.signal)) {
      if (event.type === 'final') final = event;
      else if (++deltas === 3) {
        abortedAt = performance.now();
        controller.abort();
      }
    }
    const latencyMs = performance.now() - abortedAt;
    t.diagnostic(`abort → generator done in ${latencyMs.toFixed(2)} ms`);
    assert.ok(latencyMs < 100, `cancel took ${latencyMs.toFixed(1)} ms`);
    assert.ok(final?.type === 'final');
    assert.equal(final.finishReason, 'cancelled');
    assert.ok(final.usage.completionTokens >= 3 && final.usage.completionTokens < 63);
    assert.equal(final.usage.promptTokens, HI_PROMPT_TOKENS);

    const next = await collect(engine, { maxTokens: 4 });
    assert.equal(next.text, 'ABCD');
  });

  it('stops generating and frees the sequence when the consumer returns early', async (t) => {
    let deltas = 0;
    let brokeAt = 0;
    for await (const event of engine.generate(params(), new AbortController().signal)) {
      if (event.type === 'delta' && ++deltas === 3) {
        brokeAt = performance.now();
        break; // calls return(), which waits for generation to stop and releases the sequence
      }
    }
    const latencyMs = performance.now() - brokeAt;
    t.diagnostic(`break → return() done in ${latencyMs.toFixed(2)} ms`);
    assert.ok(latencyMs < 100, `return() took ${latencyMs.toFixed(1)} ms`);
    // Both sequences must be free again: two parallel requests complete.
    const both = await Promise.all([collect(engine), collect(engine)]);
    assert.deepEqual(
      both.map((r) => r.text),
      [FULL_REPLY, FULL_REPLY],
    );
  });

  it('answers an already-aborted signal with a cancelled final event only', async () => {
    const result = await collect(engine, {}, AbortSignal.abort());
    assert.equal(result.text, '');
    assert.equal(result.finishReason, 'cancelled');
    assert.equal(result.completionTokens, 0);
  });

  it('clamps generation to the context left and rejects prompts that do not fit', async () => {
    const fits = userMessageOfTokens(CONTEXT_WINDOW - 1);
    assert.equal(await engine.countPromptTokens(fits), CONTEXT_WINDOW - 1);
    const last = await collect(engine, { messages: fits, maxTokens: 100 });
    assert.equal(last.text, 'A');
    assert.equal(last.finishReason, 'length');

    for (const promptTokens of [CONTEXT_WINDOW, 600]) {
      const iterator = engine.generate(
        params({ messages: userMessageOfTokens(promptTokens) }),
        new AbortController().signal,
      )[Symbol.asyncIterator]();
      await assert.rejects(iterator.next(), (err: unknown) => {
        assert.ok(err instanceof AppError);
        assert.equal(err.kind, 'invalid_request');
        assert.equal(err.code, 'context_length_exceeded');
        assert.equal(err.param, 'messages');
        return true;
      });
    }
  });

  it('rejects a non-positive maxTokens instead of generating without limit', async () => {
    await assert.rejects(collect(engine, { maxTokens: 0 }), { kind: 'invalid_request' });
  });

  it('reuses a cached prompt prefix without leaking the previous request', async () => {
    const long: ChatMessage[] = [
      { role: 'system', content: 'You are terse. '.repeat(10) },
      { role: 'user', content: 'one' },
    ];
    const first = await collect(engine, { messages: long, maxTokens: 8 });
    const again = await collect(engine, { messages: long, maxTokens: 8 });
    const other = await collect(engine, {
      messages: [long[0]!, { role: 'user', content: 'two, longer' }],
      maxTokens: 8,
    });
    assert.equal(first.text, 'ABCDEFGH');
    assert.deepEqual(again, first);
    assert.equal(other.text, 'ABCDEFGH');
    assert.equal(other.promptTokens, first.promptTokens + 'two, longer'.length - 'one'.length);
  });
});
