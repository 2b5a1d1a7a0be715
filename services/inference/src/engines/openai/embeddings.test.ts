/**
 * The openai engine's pass-throughs beyond chat, against a small OpenAI-compatible upstream
 * (node:http): embeddings (`POST /v1/embeddings`, vectors put back in input order, the upstream's
 * usage, its refusals by param) and a legacy completion's raw prompt (`POST /v1/completions`,
 * streamed `text_completion` chunks).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { EngineEvent } from '../engine.js';
import { createOpenAIEngine } from './openai-engine.js';

interface Seen {
  path: string;
  body: Record<string, unknown>;
}

describe('openai engine: embeddings and raw-prompt completions pass through', () => {
  let server: Server;
  let url: string;
  const seen: Seen[] = [];

  before(async () => {
    server = createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (p: Buffer) => parts.push(p));
      req.on('end', () => {
        const path = req.url ?? '';
        const body = parts.length ? (JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>) : {};
        seen.push({ path, body });
        const json = (status: number, payload: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(payload));
        };
        if (path === '/v1/models') return json(200, { object: 'list', data: [{ id: 'up-model', object: 'model' }] });
        if (path === '/v1/embeddings') {
          if (body['dimensions'] === 7) {
            return json(400, { error: { message: 'This model does not support dimensions', type: 'invalid_request_error', param: 'dimensions' } });
          }
          const inputs = body['input'] as string[];
          // Listed in reverse order, with unnormalized vectors: the engine must reorder and normalize.
          const data = inputs.map((text, index) => ({ object: 'embedding', index, embedding: [text.length, 1, 0] })).reverse();
          return json(200, { object: 'list', data, model: 'up-model', usage: { prompt_tokens: 42, total_tokens: 42 } });
        }
        if (path === '/v1/completions') {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          for (const text of ['con', 'tinued']) {
            res.write(`data: ${JSON.stringify({ object: 'text_completion', choices: [{ index: 0, text, finish_reason: null }] })}\n\n`);
          }
          res.write(`data: ${JSON.stringify({ object: 'text_completion', choices: [{ index: 0, text: '', finish_reason: 'length' }] })}\n\n`);
          res.write(`data: ${JSON.stringify({ object: 'text_completion', choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } })}\n\n`);
          res.end('data: [DONE]\n\n');
          return;
        }
        json(404, { error: { message: 'not found' } });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  after(async () => new Promise<void>((resolve) => server.close(() => resolve())));

  const engine = () => createOpenAIEngine({ baseUrl: url, contextWindow: 4096 }, { logger: pino({ level: 'silent' }) });

  it('forwards all inputs in one request and returns the vectors in input order, normalized, with the upstream usage', async () => {
    const e = engine();
    await e.start();
    const result = await e.embed({ requestId: 'r1', inputs: ['a', 'bbb'], dimensions: 3 }, new AbortController().signal);
    const request = seen.findLast((s) => s.path === '/v1/embeddings');
    assert.deepEqual(request?.body, { model: 'up-model', input: ['a', 'bbb'], encoding_format: 'float', dimensions: 3 });
    assert.deepEqual(result.embeddings, [
      [1 / Math.SQRT2, 1 / Math.SQRT2, 0],
      [3 / Math.sqrt(10), 1 / Math.sqrt(10), 0],
    ]);
    assert.equal(result.promptTokens, 42);
    await e.close();
  });

  it("passes the upstream's refusal on as a 400 naming its param", async () => {
    const e = engine();
    await e.start();
    await assert.rejects(e.embed({ requestId: 'r2', inputs: ['a'], dimensions: 7 }, new AbortController().signal), {
      kind: 'invalid_request',
      param: 'dimensions',
    });
    await e.close();
  });

  it('sends a raw prompt to /v1/completions and reads its text chunks', async () => {
    const e = engine();
    await e.start();
    const events: EngineEvent[] = [];
    for await (const event of e.generate({ requestId: 'r3', messages: [], prompt: 'Please', stop: [], maxTokens: 2 }, new AbortController().signal)) {
      events.push(event);
    }
    const request = seen.findLast((s) => s.path === '/v1/completions');
    assert.equal(request?.body['prompt'], 'Please');
    assert.equal(request?.body['messages'], undefined);
    assert.equal(request?.body['max_tokens'], 2);
    const text = events.flatMap((ev) => (ev.type === 'delta' ? [ev.text] : [])).join('');
    assert.equal(text, 'continued');
    assert.deepEqual(events.at(-1), { type: 'final', finishReason: 'length', usage: { promptTokens: 3, completionTokens: 2 } });
    await e.close();
  });
});
