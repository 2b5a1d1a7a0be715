/** The openai engine's upstream error taxonomy: HTTP statuses, error bodies, stalls, dead upstreams. */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AppError } from '../../../../../lib/errors/app-error.js';
import { mockCompletionText } from '../../../../../test/fixtures/mock-openai-server.js';
import type { Engine } from '../engine.js';
import { createOpenAIEngine } from './openai-engine.js';
import { collect, logger, openAITestKit, params, waitFor } from '../../../../../test/helpers/openai-engine-kit.js';
import { parseRetryAfter, safeUpstreamMessage } from './upstream-errors.js';

const { setup, closeAll } = openAITestKit();
after(closeAll);

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
