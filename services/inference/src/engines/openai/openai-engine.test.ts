/** The openai engine against a mock OpenAI-compatible upstream: streaming, usage, start and info. */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { estimatePromptTokens } from '../../../../../lib/chat/prompt-tokens.js';
import { AppError } from '../../../../../lib/errors/app-error.js';
import { mockCompletionText, mockPromptTokens, startMockOpenAI } from '../../../../../test/fixtures/mock-openai-server.js';
import { createOpenAIEngine } from './openai-engine.js';
import { collect, logger, MESSAGES, openAITestKit, params, UPSTREAM_MESSAGES, waitFor } from '../../../../../test/helpers/openai-engine-kit.js';

const { servers, engines, setup, closeAll } = openAITestKit();
after(closeAll);

describe('openai engine: streaming', () => {
  it('streams the exact text, one delta per content chunk, and the upstream usage', async () => {
    const { mock, engine } = await setup({ tokens: 12, model: 'org/Model-7B' });
    const { text, deltas, final } = await collect(engine.generate(params(), new AbortController().signal));
    assert.equal(text, mockCompletionText(12));
    assert.equal(deltas.length, 12);
    assert.ok(deltas.every((d) => d.type === 'delta' && d.tokenCount === 1));
    assert.deepEqual(final, {
      type: 'final',
      finishReason: 'stop',
      usage: { promptTokens: mockPromptTokens(UPSTREAM_MESSAGES), completionTokens: 12 },
    });
    // The upstream's prompt count differs from our estimate: the usage chunk was really used.
    assert.notEqual(mockPromptTokens(UPSTREAM_MESSAGES), estimatePromptTokens(MESSAGES));
    assert.equal(mock.requests(), 1);
    await waitFor(() => mock.active() === 0);
    assert.equal(mock.aborted(), 0, 'a complete answer is not an abort');
  });

  it('maps finish_reason length vs stop', async () => {
    const { engine } = await setup({ tokens: 10 });
    const cut = await collect(engine.generate(params({ maxTokens: 4 }), new AbortController().signal));
    assert.equal(cut.final.finishReason, 'length');
    assert.equal(cut.final.usage.completionTokens, 4);
    assert.equal(cut.text, mockCompletionText(4));
    const natural = await collect(engine.generate(params({ maxTokens: 100 }), new AbortController().signal));
    assert.equal(natural.final.finishReason, 'stop');
    assert.equal(natural.final.usage.completionTokens, 10);
    const exact = await collect(engine.generate(params({ maxTokens: 10 }), new AbortController().signal));
    assert.equal(exact.final.finishReason, 'length');
  });

  it('forwards model, messages (developer → system), stop, max_tokens, temperature, top_p, seed and asks for usage', async () => {
    const { mock, engine } = await setup({ tokens: 10, apiKey: 'sk-upstream-secret' }, { model: 'mock-model', apiKey: 'sk-upstream-secret' });
    const result = await collect(
      engine.generate(params({ requestId: 'req-42', maxTokens: 9, temperature: 0.3, topP: 0.9, seed: 1234, stop: [' café', 'zzz'] }), new AbortController().signal),
    );
    assert.deepEqual(mock.lastRequestBody(), {
      model: 'mock-model',
      messages: UPSTREAM_MESSAGES,
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 9,
      temperature: 0.3,
      top_p: 0.9,
      seed: 1234,
      stop: [' café', 'zzz'],
    });
    const headers = mock.lastRequestHeaders();
    assert.equal(headers?.['authorization'], 'Bearer sk-upstream-secret');
    assert.equal(headers?.['x-request-id'], 'req-42');
    // The upstream applied the stop sequence: text ends before it, finish_reason stop.
    assert.equal(result.text, 'Hello world, naïve');
    assert.equal(result.final.finishReason, 'stop');
  });

  it('omits unset sampling parameters and an empty stop list', async () => {
    const { mock, engine } = await setup({ tokens: 2 });
    await collect(engine.generate(params(), new AbortController().signal));
    const body = mock.lastRequestBody() as Record<string, unknown>;
    for (const key of ['max_tokens', 'temperature', 'top_p', 'seed', 'stop']) assert.equal(key in body, false, key);
  });

  it('falls back to counted chunks and the prompt estimate when the upstream sends no usage', async () => {
    const { engine } = await setup({ tokens: 7, omitUsage: true });
    const { final } = await collect(engine.generate(params(), new AbortController().signal));
    assert.deepEqual(final.usage, { promptTokens: estimatePromptTokens(MESSAGES), completionTokens: 7 });
  });

  it('parses byte-split frames (1..7 bytes, inside UTF-8 sequences), CRLF, comments and multi-line data', async () => {
    const expected = mockCompletionText(11);
    for (const splitBytes of [1, 2, 3, 5, 7]) {
      for (const lineEnding of ['\n', '\r\n'] as const) {
        const { engine, mock } = await setup({ tokens: 11, splitBytes, lineEnding, sseExtras: true });
        const { text, deltas, final } = await collect(engine.generate(params(), new AbortController().signal));
        assert.equal(text, expected, `split ${splitBytes} ${JSON.stringify(lineEnding)}`);
        assert.equal(deltas.length, 11);
        assert.equal(final.usage.completionTokens, 11);
        await engine.close();
        await mock.close();
      }
    }
  });

  it('serves many concurrent streams over keep-alive connections', async () => {
    const { mock, engine } = await setup({ tokens: 200 });
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: 32 }, (_, i) => collect(engine.generate(params({ requestId: `c${i}` }), new AbortController().signal))),
    );
    const ms = performance.now() - started;
    for (const r of results) {
      assert.equal(r.text, mockCompletionText(200));
      assert.equal(r.final.usage.completionTokens, 200);
    }
    console.log(`# 32 concurrent x 200 tokens through the openai engine: ${ms.toFixed(1)} ms (${((32 * 200) / (ms / 1000)).toFixed(0)} tok/s)`);
    await waitFor(() => mock.active() === 0);
    assert.equal(mock.aborted(), 0);
  });
});

describe('openai engine: start and info', () => {
  it('discovers the model from GET /models and reports info without credentials', async () => {
    const mock = await startMockOpenAI({ model: 'Qwen/Qwen2.5-0.5B-Instruct' });
    servers.push(mock);
    const engine = createOpenAIEngine({ baseUrl: `${mock.url}/`, apiKey: 'sk-secret', contextWindow: 32768 }, { logger });
    engines.push(engine);
    assert.equal(engine.ready(), false);
    await assert.rejects(
      (async () => {
        for await (const _ of engine.generate(params(), new AbortController().signal)) void _;
      })(),
      (err: unknown) => err instanceof AppError && err.kind === 'unavailable',
    );
    await engine.start();
    assert.equal(engine.ready(), true);
    const info = engine.info();
    assert.equal(info.engine, 'openai');
    assert.equal(info.model, 'Qwen/Qwen2.5-0.5B-Instruct');
    assert.match(info.fingerprint, /^fp_openai_[0-9a-f]{10}$/);
    assert.equal(info.contextWindow, 32768);
    assert.equal(info.backend, 'openai-compatible upstream');
    assert.doesNotMatch(JSON.stringify(info), /sk-secret|127\.0\.0\.1/);
    assert.equal(await engine.countPromptTokens(MESSAGES), estimatePromptTokens(MESSAGES));
    // Fingerprint is stable per (baseUrl, model) and differs across models.
    const other = createOpenAIEngine({ baseUrl: mock.url, model: 'another', contextWindow: 1 }, { logger });
    assert.notEqual(other.info().fingerprint, info.fingerprint);
    await engine.close();
    assert.equal(engine.ready(), false);
  });

  it('uses the configured model even when the upstream has no /models; without one it fails clearly', async () => {
    const mock = await startMockOpenAI({ modelsStatus: 404, tokens: 3 });
    servers.push(mock);
    const configured = createOpenAIEngine({ baseUrl: mock.url, model: 'mock-model', contextWindow: 4096 }, { logger });
    engines.push(configured);
    await configured.start();
    assert.equal((await collect(configured.generate(params(), new AbortController().signal))).text, mockCompletionText(3));
    const discovering = createOpenAIEngine({ baseUrl: mock.url, contextWindow: 4096 }, { logger });
    await assert.rejects(discovering.start(), /cannot discover the model.*OPENAI_UPSTREAM_MODEL/);
  });

  it('start() rejects quickly when the upstream is unreachable (connection refused)', async () => {
    const probe = createNetServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const engine = createOpenAIEngine({ baseUrl: `http://127.0.0.1:${port}/v1`, contextWindow: 4096 }, { logger });
    const t0 = performance.now();
    await assert.rejects(engine.start(), /unreachable \(ECONNREFUSED\)/);
    const ms = performance.now() - t0;
    assert.ok(ms < 1000, `took ${ms} ms`);
    assert.equal(engine.ready(), false);
  });

  it('start() gives up on a silent upstream after its timeout instead of hanging', async () => {
    const sockets: import('node:net').Socket[] = [];
    const silent: NetServer = createNetServer((s) => sockets.push(s)); // accepts, never answers
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as AddressInfo).port;
    const engine = createOpenAIEngine({ baseUrl: `http://127.0.0.1:${port}/v1`, contextWindow: 4096, startTimeoutMs: 200 }, { logger });
    const t0 = performance.now();
    await assert.rejects(engine.start(), /no answer within 200 ms/);
    const ms = performance.now() - t0;
    assert.ok(ms >= 150 && ms < 1500, `took ${ms} ms`);
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  });

  it('start() reports rejected credentials', async () => {
    const mock = await startMockOpenAI({ apiKey: 'right' });
    servers.push(mock);
    const engine = createOpenAIEngine({ baseUrl: mock.url, apiKey: 'wrong', contextWindow: 4096 }, { logger });
    await assert.rejects(engine.start(), /rejected the credentials \(HTTP 401\).*OPENAI_UPSTREAM_API_KEY/);
  });

  it('refuses a base URL with embedded credentials', () => {
    assert.throws(() => createOpenAIEngine({ baseUrl: 'http://u:p@127.0.0.1:1/v1', contextWindow: 1 }, { logger }), /must not contain credentials/);
  });
});
