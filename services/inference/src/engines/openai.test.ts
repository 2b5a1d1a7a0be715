import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { createParser } from 'eventsource-parser';
import { pino } from 'pino';
import { AppError } from '../../../../lib/errors/app-error.js';
import {
  mockCompletionText,
  mockPromptTokens,
  startMockOpenAI,
  type MockOpenAIOptions,
  type MockOpenAIServer,
} from '../../../../test/fixtures/mock-openai-server.js';
import type { ChatMessage, Engine, EngineEvent, GenerateParams } from './engine.js';
import {
  createOpenAIEngine,
  estimatePromptTokens,
  parseRetryAfter,
  safeUpstreamMessage,
  SseParser,
  type OpenAIEngineOptions,
  type SseEvent,
} from './openai.js';

const logger = pino({ level: 'silent' });
const MESSAGES: ChatMessage[] = [
  { role: 'developer', content: 'You are terse.' },
  { role: 'user', content: 'Say hello to the world, please.', name: 'alice' },
];
const UPSTREAM_MESSAGES = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Say hello to the world, please.', name: 'alice' },
];

function params(over: Partial<GenerateParams> = {}): GenerateParams {
  return { requestId: 'req-1', messages: MESSAGES, stop: [], ...over };
}

async function collect(iterable: AsyncIterable<EngineEvent>): Promise<{ text: string; deltas: EngineEvent[]; final: Extract<EngineEvent, { type: 'final' }> }> {
  const deltas: EngineEvent[] = [];
  let text = '';
  let final: Extract<EngineEvent, { type: 'final' }> | undefined;
  for await (const ev of iterable) {
    assert.equal(final, undefined, 'nothing after the final event');
    if (ev.type === 'delta') {
      deltas.push(ev);
      text += ev.text;
    } else final = ev;
  }
  assert.ok(final, 'exactly one final event');
  return { text, deltas, final };
}

const servers: MockOpenAIServer[] = [];
const engines: Engine[] = [];

async function setup(
  mockOpts: MockOpenAIOptions = {},
  engineOpts: Partial<OpenAIEngineOptions> = {},
): Promise<{ mock: MockOpenAIServer; engine: Engine }> {
  const mock = await startMockOpenAI(mockOpts);
  servers.push(mock);
  const engine = createOpenAIEngine({ baseUrl: mock.url, contextWindow: 4096, ...engineOpts }, { logger });
  engines.push(engine);
  await engine.start();
  return { mock, engine };
}

async function waitFor(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const start = performance.now();
  while (!cond()) {
    if (performance.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 1));
  }
}

after(async () => {
  await Promise.all(engines.map((e) => e.close()));
  await Promise.all(servers.map((s) => s.close()));
});

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

describe('openai engine: upstream errors', () => {
  const isApp = (kind: string, code?: string) => (err: unknown) => {
    assert.ok(err instanceof AppError, `not an AppError: ${String(err)}`);
    assert.equal(err.kind, kind);
    if (code !== undefined) assert.equal(err.code, code);
    assert.doesNotMatch(err.message, /127\.0\.0\.1|http:|\/opt\/|worker\.py|10\.0\.0\.7/);
    return true;
  };
  const drain = async (engine: Engine, p = params()) => {
    for await (const _ of engine.generate(p, new AbortController().signal)) void _;
  };

  it('a mid-stream error event throws AppError internal with a generic message, after the deltas before it', async () => {
    const { engine } = await setup({ tokens: 10, failAfterTokens: 3 });
    const seen: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const ev of engine.generate(params(), new AbortController().signal)) if (ev.type === 'delta') seen.push(ev.text);
      })(),
      isApp('internal'),
    );
    assert.equal(seen.join(''), mockCompletionText(3));
  });

  it('429 and 503 → unavailable capacity_exceeded with Retry-After', async () => {
    const a = await setup({ httpError: { status: 429, retryAfter: '7' } }, { model: 'mock-model' });
    await assert.rejects(drain(a.engine), (err: unknown) => isApp('unavailable', 'capacity_exceeded')(err) && (err as AppError).retryAfterSeconds === 7);
    const b = await setup({ httpError: { status: 503 } }, { model: 'mock-model' });
    await assert.rejects(drain(b.engine), (err: unknown) => isApp('unavailable', 'capacity_exceeded')(err) && (err as AppError).retryAfterSeconds === undefined);
  });

  it('4xx → invalid_request: safe upstream messages kept (context length detected), unsafe ones replaced', async () => {
    const ctxMsg = "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.";
    const a = await setup({ httpError: { status: 400, body: { error: { message: ctxMsg, type: 'BadRequestError', param: null, code: 400 } } } });
    await assert.rejects(drain(a.engine), (err: unknown) => {
      isApp('invalid_request', 'context_length_exceeded')(err);
      assert.equal((err as AppError).message, ctxMsg);
      assert.equal((err as AppError).param, 'messages');
      return true;
    });
    // Old vLLM shape (top-level object: "error") with a leaky message.
    const leaky = { object: 'error', message: 'Failed to load /srv/models/llama/tokenizer.json from http://10.0.0.7:8000', type: 'BadRequestError', param: null, code: 400 };
    const b = await setup({ httpError: { status: 422, body: leaky } });
    await assert.rejects(drain(b.engine), (err: unknown) => {
      isApp('invalid_request', 'invalid_request')(err);
      assert.equal((err as AppError).message, 'The inference engine rejected the request.');
      return true;
    });
  });

  it('500 → internal, 502 → unavailable, 401/404 (our misconfiguration) → internal; none leak the upstream', async () => {
    for (const [status, kind] of [[500, 'internal'], [502, 'unavailable'], [401, 'internal'], [404, 'internal']] as const) {
      const { engine } = await setup({ httpError: { status, body: { error: { message: 'boom at http://10.0.0.7:8000/opt/x.py' } } } }, { model: 'mock-model' });
      await assert.rejects(drain(engine), isApp(kind));
    }
  });

  it('an upstream that dies mid-stream (no [DONE], no finish_reason) → unavailable', async () => {
    const raw = createHttpServer((req, res) => {
      if (req.url?.endsWith('/models')) {
        res.end(JSON.stringify({ data: [{ id: 'm' }] }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"index":0,"delta":{"content":"par"}}]}\n\n');
      setTimeout(() => res.destroy(), 20);
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    const engine = createOpenAIEngine({ baseUrl: `http://127.0.0.1:${(raw.address() as AddressInfo).port}/v1`, contextWindow: 4096 }, { logger });
    await engine.start();
    await assert.rejects(drain(engine), isApp('unavailable'));
    raw.closeAllConnections();
    await new Promise<void>((r) => raw.close(() => r()));
  });

  it('connection refused during generate → unavailable without the URL', async () => {
    const { engine, mock } = await setup({}, { model: 'mock-model' });
    await mock.close();
    await assert.rejects(drain(engine), isApp('unavailable'));
  });

  it('a stalled upstream fails with timeout after requestTimeoutMs and the upstream request is dropped', async () => {
    const { engine, mock } = await setup({ ttftMs: 2000 }, { requestTimeoutMs: 100 });
    const t0 = performance.now();
    await assert.rejects(drain(engine), isApp('timeout'));
    assert.ok(performance.now() - t0 < 1000);
    await waitFor(() => mock.aborted() === 1, 500);
  });

  it('a slow consumer is not mistaken for a stalled upstream', async () => {
    const { engine, mock } = await setup({ tokens: 2 }, { requestTimeoutMs: 50 });
    let text = '';
    for await (const ev of engine.generate(params(), new AbortController().signal)) {
      if (ev.type === 'delta') text += ev.text;
      await new Promise((r) => setTimeout(r, 120));
    }
    assert.equal(text, mockCompletionText(2));
    assert.equal(mock.aborted(), 0);
  });

  it('an upstream that ignores stream:true and answers JSON is still served', async () => {
    const raw = createHttpServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: 'whole answer' }, finish_reason: 'length' }], usage: { prompt_tokens: 11, completion_tokens: 2 } }));
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    const engine = createOpenAIEngine({ baseUrl: `http://127.0.0.1:${(raw.address() as AddressInfo).port}/v1`, model: 'm', contextWindow: 4096 }, { logger });
    await engine.start();
    const r = await collect(engine.generate(params(), new AbortController().signal));
    assert.equal(r.text, 'whole answer');
    assert.deepEqual(r.final, { type: 'final', finishReason: 'length', usage: { promptTokens: 11, completionTokens: 2 } });
    raw.closeAllConnections();
    await new Promise<void>((r2) => raw.close(() => r2()));
  });
});

describe('openai engine: cancellation reaches the upstream', () => {
  it('aborting the signal closes the upstream connection within 100 ms and yields a cancelled final', async () => {
    const { engine, mock } = await setup({ tokens: 10_000, interTokenMs: 5 });
    const controller = new AbortController();
    const events: EngineEvent[] = [];
    let abortedAt = 0;
    const seenByUpstream = mock.nextAbort();
    for await (const ev of engine.generate(params(), controller.signal)) {
      events.push(ev);
      if (events.length === 3) {
        abortedAt = performance.now();
        controller.abort();
      }
    }
    const latency = (await seenByUpstream) - abortedAt;
    console.log(`# cancel latency (signal abort → mock sees connection closed): ${latency.toFixed(2)} ms`);
    assert.ok(latency < 100, `latency ${latency} ms`);
    assert.equal(mock.aborted(), 1);
    const final = events.at(-1);
    assert.equal(final?.type, 'final');
    assert.equal(final.type === 'final' && final.finishReason, 'cancelled');
    assert.ok(final.type === 'final' && final.usage.completionTokens >= 3);
    assert.equal(final.type === 'final' && final.usage.promptTokens, estimatePromptTokens(MESSAGES));
    await waitFor(() => mock.active() === 0);
  });

  it('the consumer calling .return() (break) aborts the upstream request within 100 ms', async () => {
    const { engine, mock } = await setup({ tokens: 10_000, interTokenMs: 5 });
    const seenByUpstream = mock.nextAbort();
    let n = 0;
    let brokeAt = 0;
    for await (const ev of engine.generate(params(), new AbortController().signal)) {
      if (ev.type === 'delta' && ++n === 3) {
        brokeAt = performance.now();
        break;
      }
    }
    const latency = (await seenByUpstream) - brokeAt;
    console.log(`# cancel latency (iterator .return() → mock sees connection closed): ${latency.toFixed(2)} ms`);
    assert.ok(latency < 100, `latency ${latency} ms`);
    assert.equal(mock.aborted(), 1);
  });

  it('aborting before the first token (upstream still prefilling) is seen by the upstream', async () => {
    const { engine, mock } = await setup({ ttftMs: 5000 });
    const controller = new AbortController();
    const seenByUpstream = mock.nextAbort();
    setTimeout(() => controller.abort(), 50);
    const r = await collect(engine.generate(params(), controller.signal));
    assert.equal(r.final.finishReason, 'cancelled');
    assert.equal(r.final.usage.completionTokens, 0);
    await seenByUpstream;
    assert.equal(mock.aborted(), 1);
  });

  it('an already-aborted signal yields cancelled without a completed upstream request', async () => {
    const { engine, mock } = await setup({ tokens: 5 });
    const controller = new AbortController();
    controller.abort();
    const r = await collect(engine.generate(params(), controller.signal));
    assert.equal(r.final.finishReason, 'cancelled');
    assert.equal(mock.requests(), 0);
  });

  it('close() aborts in-flight generations', async () => {
    const { engine, mock } = await setup({ tokens: 10_000, interTokenMs: 5 });
    const run = collect(engine.generate(params(), new AbortController().signal));
    await waitFor(() => mock.active() === 1);
    await engine.close();
    await assert.rejects(run, (err: unknown) => err instanceof AppError && err.kind === 'unavailable');
    await waitFor(() => mock.aborted() === 1, 100);
  });
});

// ---------------------------------------------------------------------------------------------
// SSE parser: properties
// ---------------------------------------------------------------------------------------------

type Line =
  | { kind: 'data' | 'event' | 'id' | 'comment'; value: string; spaced: boolean }
  | { kind: 'retry' };

const text = fc.string({ unit: 'binary', maxLength: 12 }).filter((s) => !/[\r\n\0\uFEFF]/.test(s));
const lineArb: fc.Arbitrary<Line> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('data' as const), value: text, spaced: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('event' as const), value: text, spaced: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('id' as const), value: text, spaced: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('comment' as const), value: text, spaced: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'retry' as const }) },
);
const streamArb = fc.record({
  blocks: fc.array(fc.array(lineArb, { maxLength: 5 }), { maxLength: 8 }),
  endings: fc.array(fc.constantFrom('\n', '\r\n', '\r'), { minLength: 1, maxLength: 5 }),
});

/** Serializes blocks (each ended by a blank line) and the events a correct parser must produce. */
function serialize(blocks: Line[][], endings: string[]): { wire: string; expected: SseEvent[] } {
  const lines: string[] = [];
  const expected: SseEvent[] = [];
  for (const block of blocks) {
    const data: string[] = [];
    let event = '';
    let id: string | undefined;
    for (const l of block) {
      if (l.kind === 'retry') {
        lines.push('retry: 1000');
        continue;
      }
      // Without the optional space, a value starting with a space would lose nothing; with it, one space goes.
      const sep = l.spaced || l.value.startsWith(' ') ? ': ' : ':';
      lines.push(l.kind === 'comment' ? `:${l.value}` : `${l.kind}${sep}${l.value}`);
      if (l.kind === 'data') data.push(l.value);
      else if (l.kind === 'event') event = l.value;
      else if (l.kind === 'id') id = l.value;
    }
    lines.push('');
    if (data.length > 0) expected.push({ event: event || 'message', data: data.join('\n'), ...(id !== undefined ? { id } : {}) });
  }
  let wire = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    let eol = endings[i % endings.length] ?? '\n';
    // "\r" then a blank line ended by "\n…" would read as one CRLF: use CRLF there instead.
    const next = lines[i + 1];
    if (eol === '\r' && next === '' && (endings[(i + 1) % endings.length] ?? '\n').startsWith('\n')) eol = '\r\n';
    wire += line + eol;
  }
  return { wire, expected };
}

function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % (bytes.length + 1))))].sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    parts.push(bytes.subarray(prev, p));
    prev = p;
  }
  return parts;
}

describe('SseParser', () => {
  it('property: any byte split of a valid SSE stream parses to the same events', () => {
    fc.assert(
      fc.property(streamArb, fc.array(fc.nat(), { maxLength: 40 }), ({ blocks, endings }, cuts) => {
        const { wire, expected } = serialize(blocks, endings);
        const bytes = new TextEncoder().encode(wire);
        const parser = new SseParser();
        const got: SseEvent[] = [];
        for (const part of splitAt(bytes, cuts)) got.push(...parser.feed(part));
        got.push(...parser.end());
        assert.deepEqual(got, expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: agrees with eventsource-parser on whole streams', () => {
    fc.assert(
      fc.property(streamArb, ({ blocks, endings }) => {
        // A trailing comment line: a stream ending in a lone CR is otherwise held back by the
        // oracle (it waits for a possible LF); the comment changes no events.
        const wire = `${serialize(blocks, endings).wire}:eof\n`;
        const oracle: SseEvent[] = [];
        const p = createParser({
          onEvent: (e) => oracle.push({ event: e.event ?? 'message', data: e.data, ...(e.id !== undefined ? { id: e.id } : {}) }),
        });
        p.feed(wire);
        const ours = new SseParser();
        assert.deepEqual([...ours.feed(wire), ...ours.end()], oracle);
      }),
      { numRuns: 1000 },
    );
  });

  it('dispatches a final event whose blank line never came, and handles a CR split from its LF', () => {
    const p = new SseParser();
    assert.deepEqual(p.feed('data: a\r'), []);
    assert.deepEqual(p.feed('\n\r'), [{ event: 'message', data: 'a' }]);
    assert.deepEqual(p.feed('\ndata: [DONE]\n'), []);
    assert.deepEqual(p.end(), [{ event: 'message', data: '[DONE]' }]);
  });
});

describe('helpers', () => {
  it('safeUpstreamMessage keeps plain messages and drops URLs, paths, hosts, keys, stack traces', () => {
    assert.equal(safeUpstreamMessage('temperature must be between 0 and 2'), 'temperature must be between 0 and 2');
    for (const bad of [
      'see https://example.com/docs',
      'cannot open /home/user/models/x.gguf',
      'C:\\models\\x',
      'error in serving_chat.py line 3',
      'Traceback (most recent call last)',
      'upstream 10.1.2.3 refused',
      'invalid api_key sk-abcdef',
      'x'.repeat(501),
      42,
      undefined,
    ]) {
      assert.equal(safeUpstreamMessage(bad), undefined, String(bad));
    }
  });

  it('parseRetryAfter reads seconds and HTTP dates', () => {
    assert.equal(parseRetryAfter('5'), 5);
    assert.equal(parseRetryAfter(null), undefined);
    assert.equal(parseRetryAfter('soon'), undefined);
    const now = Date.parse('2025-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now), 30);
  });
});
