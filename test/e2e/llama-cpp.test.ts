/**
 * Real llama.cpp inference through the whole stack (gateway → gRPC → inference → node-llama-cpp)
 * on the tiny GGUF the suite generates (no network). Its "successor" weights make greedy output
 * exact: any chat reply walks "A" … "~" and then ends with EOS.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI, { APIError } from 'openai';
import { pino } from 'pino';
import { writeTinyGguf } from '../../services/inference/src/engines/llama-cpp/tiny-gguf.js';
import type { Engine } from '../../services/inference/src/engines/engine.js';
import { createLlamaCppEngine } from '../../services/inference/src/engines/llama-cpp/llama-cpp-engine.js';
import { createSchemaValidator } from '../helpers/openai-schemas.js';
import { startPlatform, waitFor, type Platform } from '../helpers/platform.js';

const FULL_REPLY = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~';
const validate = createSchemaValidator();

/** Holds generations at their first token until released, and records when each one ended. */
function gated(engine: Engine) {
  let open = true;
  let waiting: Array<() => void> = [];
  const ended: number[] = [];
  const wrapped: Engine = {
    ...engine,
    async *generate(params, signal) {
      try {
        let first = true;
        for await (const event of engine.generate(params, signal)) {
          if (first && !open) {
            await new Promise<void>((resolve) => {
              waiting.push(resolve);
              signal.addEventListener('abort', () => resolve(), { once: true });
            });
          }
          first = false;
          yield event;
        }
      } finally {
        ended.push(performance.now());
      }
    },
  };
  return {
    engine: wrapped,
    ended,
    close: () => (open = false),
    release() {
      open = true;
      waiting.forEach((r) => r());
      waiting = [];
    },
  };
}

describe('llama.cpp through the gateway (tiny generated model)', () => {
  let platform: Platform;
  let client: OpenAI;
  let gate: ReturnType<typeof gated>;
  before(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tiny-'));
    const modelPath = path.join(dir, 'tiny.gguf');
    await writeTinyGguf(modelPath);
    const engine = createLlamaCppEngine(
      { modelPath, gpu: 'cpu', threads: 1, parallel: 2, modelName: 'xerotier-tiny-successor' },
      { logger: pino({ level: 'silent' }) },
    );
    gate = gated(engine);
    platform = await startPlatform({ engines: [gate.engine], workerEnv: { INFERENCE_CAPACITY: '2', INFERENCE_QUEUE_CAPACITY: '0' } });
    client = new OpenAI({ baseURL: platform.baseUrl(), apiKey: platform.demoKey, maxRetries: 0 });
  });
  after(async () => platform.stop());

  it('answers with the exact greedy text, finish_reason stop, engine-counted usage', async () => {
    const r = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], temperature: 0 });
    validate('CreateChatCompletionResponse', r);
    assert.equal(r.choices[0]?.message.content, FULL_REPLY);
    assert.equal(r.choices[0]?.finish_reason, 'stop');
    assert.equal(r.model, 'xerotier-tiny-successor');
    assert.match(r.system_fingerprint ?? '', /^fp_llamacpp_/);
    assert.deepEqual(
      { p: r.usage?.prompt_tokens, c: r.usage?.completion_tokens, t: r.usage?.total_tokens },
      { p: 22, c: 63, t: 85 },
    );
  });

  it('streams exact deltas and stops at max_tokens with finish_reason length', async () => {
    const stream = await client.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'Hi' }],
      temperature: 0,
      max_completion_tokens: 10,
      max_tokens: 50, // max_completion_tokens wins
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null | undefined;
    let usage;
    for await (const chunk of stream) {
      validate('CreateChatCompletionStreamResponse', chunk);
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, 'ABCDEFGHIJ');
    assert.equal(finish, 'length');
    assert.equal(usage?.completion_tokens, 10);
  });

  it('honours a stop sequence', async () => {
    const r = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], temperature: 0, stop: ['KLM'] });
    assert.equal(r.choices[0]?.message.content, 'ABCDEFGHIJ');
    assert.equal(r.choices[0]?.finish_reason, 'stop');
  });

  it('serves two concurrent requests correctly', async () => {
    const [a, b] = await Promise.all([
      client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], temperature: 0 }),
      client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Hello there' }], temperature: 0, max_tokens: 5 }),
    ]);
    assert.equal(a.choices[0]?.message.content, FULL_REPLY);
    assert.equal(b.choices[0]?.message.content, 'ABCDE');
  });

  it('refuses a prompt longer than the context window with 400', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x'.repeat(600) }] }),
      (err: unknown) => err instanceof APIError && err.status === 400 && err.code === 'context_length_exceeded',
    );
  });

  it('answers 503 capacity_exceeded when the worker is full (capacity 2, queue 0)', async () => {
    gate.close();
    const held = [0, 1].map(() =>
      client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], temperature: 0 }),
    );
    await waitFor(() => platform.workers[0]!.service.status().inFlightCount === 2, 5000, 'two running');
    await assert.rejects(
      client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Hi' }] }),
      (err: unknown) => err instanceof APIError && err.status === 503 && err.code === 'capacity_exceeded' && Number(err.headers?.get('retry-after')) >= 1,
    );
    gate.release();
    for (const r of await Promise.all(held)) assert.equal(r.choices[0]?.message.content, FULL_REPLY);
  });

  it('stops the engine promptly when the client disconnects (target 100 ms)', async () => {
    gate.close();
    const before = gate.ended.length;
    const req = request({
      host: '127.0.0.1',
      port: platform.gateway.port,
      path: '/demo/chat/v1/chat/completions',
      method: 'POST',
      headers: { authorization: `Bearer ${platform.demoKey}`, 'content-type': 'application/json' },
    });
    req.on('error', () => undefined);
    let status = 0;
    req.on('response', (res) => {
      status = res.statusCode ?? 0;
      res.resume();
    });
    req.end(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], stream: true, temperature: 0 }));
    await waitFor(() => platform.workers[0]!.service.status().inFlightCount === 1 || status !== 0, 5000, 'generation running');
    assert.equal(status, 0, 'no response yet: the generation is held before its first token');
    await new Promise((r) => setTimeout(r, 50));
    const closedAt = performance.now();
    req.destroy();
    await waitFor(() => gate.ended.length > before, 2000, 'engine generation ended');
    gate.release();
    const ms = gate.ended.at(-1)! - closedAt;
    console.log(`# llama.cpp cancel through the stack: engine ended ${ms.toFixed(1)} ms after the client closed`);
    assert.ok(ms < 500, `${ms} ms (target 100 ms; the figure is printed above)`);
    await waitFor(() => platform.workers[0]!.service.status().inFlightCount === 0, 1000, 'sequence freed');
    const after = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], temperature: 0, max_tokens: 3 });
    assert.equal(after.choices[0]?.message.content, 'ABC');
  });
});
