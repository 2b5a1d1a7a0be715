/**
 * Legacy completions through the whole stack (official openai SDK → gateway → gRPC → inference →
 * llama.cpp) on the tiny generated model. A raw prompt gets no chat template, so greedy output
 * is exact: the model continues with the successor of the prompt's last character ("Hello" →
 * "pqrst…~", then its end-of-generation token).
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI, { BadRequestError } from 'openai';
import { pino } from 'pino';
import { createLlamaCppEngine } from '../../services/inference/src/engines/llama-cpp/llama-cpp-engine.js';
import { writeTinyGguf } from '../../services/inference/src/engines/llama-cpp/tiny-gguf.js';
import { createSchemaValidator } from '../helpers/openai-schemas.js';
import { startPlatform, type Platform } from '../helpers/platform.js';
import { sseRequest } from '../helpers/sse-client.js';
import { unthrottledTiers } from '../helpers/tiers.js';

const validate = createSchemaValidator();

describe('legacy completions through the gateway (llama.cpp, tiny generated model)', () => {
  let platform: Platform;
  let client: OpenAI;

  before(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tiny-completions-'));
    const modelPath = path.join(dir, 'tiny.gguf');
    await writeTinyGguf(modelPath);
    const engine = createLlamaCppEngine(
      { modelPath, gpu: 'cpu', threads: 1, parallel: 2, modelName: 'xerotier-tiny-successor' },
      { logger: pino({ level: 'silent' }) },
    );
    const tiers = unthrottledTiers();
    platform = await startPlatform({ engines: [engine], gatewayEnv: { TIERS_FILE: tiers }, quotaEnv: { TIERS_FILE: tiers } });
    client = new OpenAI({ baseURL: platform.baseUrl(), apiKey: platform.demoKey, maxRetries: 0 });
  });
  after(async () => platform?.stop());

  it('completes a raw prompt: exact text, finish_reason length, engine-counted usage, valid body', async () => {
    const r = await client.completions.create({ model: 'm', prompt: 'Hello', max_tokens: 5, temperature: 0 });
    validate('CreateCompletionResponse', r);
    assert.equal(r.object, 'text_completion');
    assert.match(r.id, /^cmpl-/);
    assert.equal(r.model, 'xerotier-tiny-successor');
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0]!.text, 'pqrst');
    assert.equal(r.choices[0]!.finish_reason, 'length');
    assert.equal(r.choices[0]!.logprobs, null);
    assert.deepEqual(r.usage, { prompt_tokens: 6, completion_tokens: 5, total_tokens: 11 }); // BOS + 5 characters
  });

  it('defaults max_tokens to 16, as OpenAI does; an array of one prompt is that prompt', async () => {
    const { data: r, response } = await client.completions.create({ model: 'm', prompt: ['A'], temperature: 0 }).withResponse();
    assert.ok(response.headers.get('x-ratelimit-limit-requests'), 'rate-limit headers on the JSON answer, as for chat');
    assert.equal(r.choices[0]!.text, 'BCDEFGHIJKLMNOPQ');
    assert.equal(r.choices[0]!.finish_reason, 'length');
    assert.equal(r.usage?.completion_tokens, 16);
  });

  it('stops at a stop sequence and at the end of generation (finish_reason stop); echo prepends the prompt', async () => {
    const stopped = await client.completions.create({ model: 'm', prompt: 'a', stop: ['e'], temperature: 0 });
    assert.equal(stopped.choices[0]!.text, 'bcd');
    assert.equal(stopped.choices[0]!.finish_reason, 'stop');
    const ended = await client.completions.create({ model: 'm', prompt: 'w', max_tokens: 100, temperature: 0 });
    assert.equal(ended.choices[0]!.text, 'xyz{|}~');
    assert.equal(ended.choices[0]!.finish_reason, 'stop');
    const echoed = await client.completions.create({ model: 'm', prompt: 'Hi', max_tokens: 3, echo: true, temperature: 0 });
    validate('CreateCompletionResponse', echoed);
    assert.equal(echoed.choices[0]!.text, 'Hijkl');
  });

  it('streams text_completion chunks through the SDK, then finish_reason, usage and [DONE]', async () => {
    const stream = await client.completions.create({
      model: 'm',
      prompt: 'Hello',
      max_tokens: 100,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    const finishes: Array<string | null> = [];
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'text_completion');
      assert.match(chunk.id, /^cmpl-/);
      for (const choice of chunk.choices) {
        text += choice.text;
        finishes.push(choice.finish_reason);
      }
      if (chunk.usage) {
        usage = chunk.usage;
        validate('CreateCompletionResponse', chunk);
      }
    }
    assert.equal(text, 'pqrstuvwxyz{|}~');
    assert.equal(finishes.at(-1), 'stop');
    assert.ok(finishes.slice(0, -1).every((f) => f === null), 'only the last choice chunk has a finish_reason');
    // 15 visible tokens + the end-of-generation token, which is counted but never emitted.
    assert.deepEqual(usage, { prompt_tokens: 6, completion_tokens: 16, total_tokens: 22 });
  });

  it('on the wire: the echo chunk first, the finish chunk validates against the OpenAI schema, then [DONE]', async () => {
    const res = await sseRequest({
      port: platform.gateway.port,
      path: '/demo/chat/v1/completions',
      key: platform.demoKey,
      body: { model: 'm', prompt: 'Hi', max_tokens: 3, temperature: 0, echo: true, stream: true },
    });
    assert.equal(res.status, 200);
    assert.equal(res.ending, 'done');
    assert.ok(res.headers['x-ratelimit-limit-requests'], 'rate-limit headers, as for chat');
    const chunks = res.events as Array<{ object: string; choices: Array<{ text: string; finish_reason: string | null }> }>;
    assert.ok(chunks.every((c) => c.object === 'text_completion'));
    assert.equal(chunks[0]!.choices[0]!.text, 'Hi');
    assert.equal(chunks.map((c) => c.choices[0]!.text).join(''), 'Hijkl');
    const last = chunks.at(-1)!;
    validate('CreateCompletionResponse', last);
    assert.equal(last.choices[0]!.finish_reason, 'length');
  });

  it('refuses by name what it cannot honour', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ prompt: ['one', 'two'] }, 'prompt'],
      [{ prompt: [1, 2, 3] }, 'prompt'],
      [{ prompt: '' }, 'prompt'],
      [{ prompt: 'a', n: 2 }, 'n'],
      [{ prompt: 'a', best_of: 3 }, 'best_of'],
      [{ prompt: 'a', logprobs: 2 }, 'logprobs'],
      [{ prompt: 'a', suffix: 'end' }, 'suffix'],
      [{ prompt: 'a', presence_penalty: 0.5 }, 'presence_penalty'],
      [{ prompt: 'a', frequency_penalty: -1 }, 'frequency_penalty'],
      [{ prompt: 'a', logit_bias: { '50256': -100 } }, 'logit_bias'],
      [{ prompt: 'a', stop: ['1', '2', '3', '4', '5'] }, 'stop'],
    ];
    for (const [body, param] of cases) {
      await assert.rejects(client.completions.create({ model: 'm', ...body } as unknown as OpenAI.CompletionCreateParamsNonStreaming), (err: unknown) => {
        assert.ok(err instanceof BadRequestError, JSON.stringify(body));
        assert.equal(err.param, param, JSON.stringify(body));
        return true;
      });
    }
    // Neutral values are accepted.
    const ok = await client.completions.create({ model: 'm', prompt: 'a', max_tokens: 1, n: 1, best_of: 1, presence_penalty: 0, logit_bias: {}, suffix: null });
    assert.equal(ok.choices[0]!.text, 'b');
  });

  it('is served by chat endpoints only: the embeddings endpoint answers 400 endpoint_kind_mismatch', async () => {
    const embeddings = new OpenAI({ baseURL: platform.baseUrl('demo', 'embeddings'), apiKey: platform.demoKey, maxRetries: 0 });
    await assert.rejects(embeddings.completions.create({ model: 'm', prompt: 'a' }), (err: unknown) => {
      assert.ok(err instanceof BadRequestError);
      assert.equal(err.code, 'endpoint_kind_mismatch');
      return true;
    });
  });
});
