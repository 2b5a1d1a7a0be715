/**
 * End-to-end conformance: the official `openai` SDK against the gateway, every hop real gRPC
 * (gateway → auth → quota → inference), bodies validated against OpenAI's own schemas.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI, { AuthenticationError } from 'openai';
import { rawRequest } from '../helpers/raw-request.js';
import { createSchemaValidator } from '../helpers/openai-schemas.js';
import { startPlatform, type Platform } from '../helpers/platform.js';

const validate = createSchemaValidator();

describe('OpenAI SDK against the platform (simulator engine)', () => {
  let platform: Platform;
  let client: OpenAI;
  before(async () => {
    platform = await startPlatform();
    client = new OpenAI({ baseURL: platform.baseUrl(), apiKey: platform.demoKey, maxRetries: 0 });
  });
  after(async () => platform.stop());

  it('answers a non-streaming chat completion', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'anything', messages: [{ role: 'user', content: 'Hello!' }] })
      .withResponse();
    validate('CreateChatCompletionResponse', data);
    assert.equal(data.object, 'chat.completion');
    assert.equal(data.model, 'simulator', 'the simulator says what it is');
    assert.equal(data.system_fingerprint, 'fp_simulator');
    assert.ok(data.choices[0]?.message.content && data.choices[0].message.content.length > 0);
    assert.equal(data.choices[0]?.finish_reason, 'stop');
    assert.equal(data.usage?.completion_tokens, 12);
    assert.ok(response.headers.get('x-request-id'));
    assert.equal(response.headers.get('x-ratelimit-limit'), '60', 'cpu_standard: 60 requests/min');
    assert.ok(Number(response.headers.get('x-ratelimit-remaining')) < 60);
    assert.ok(Number(response.headers.get('x-ratelimit-reset')) > Date.now() / 1000 - 1);
    assert.equal(response.headers.get('x-ratelimit-limit-tokens'), '50000');
  });

  it('streams with usage: role first, finish_reason last, usage chunk, then [DONE]', async () => {
    const stream = await client.chat.completions.create({
      model: 'anything',
      messages: [{ role: 'user', content: 'Stream please' }],
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 5,
    });
    const chunks = [];
    for await (const chunk of stream) {
      validate('CreateChatCompletionStreamResponse', chunk);
      chunks.push(chunk);
    }
    assert.ok(chunks.length >= 3);
    assert.equal(chunks[0]?.choices[0]?.delta.role, 'assistant');
    assert.ok(chunks.slice(1).every((c) => c.choices[0]?.delta.role === undefined));
    const withChoices = chunks.filter((c) => c.choices.length > 0);
    assert.equal(withChoices.at(-1)?.choices[0]?.finish_reason, 'length');
    assert.ok(withChoices.slice(0, -1).every((c) => c.choices[0]?.finish_reason === null));
    const last = chunks.at(-1);
    assert.deepEqual(last?.choices, []);
    assert.equal(last?.usage?.completion_tokens, 5);
    assert.ok(chunks.slice(0, -1).every((c) => c.usage === null));
    assert.equal(new Set(chunks.map((c) => c.id)).size, 1, 'one id across chunks');
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    assert.equal(text.split(' ').length, 5);
  });

  it('streams without usage when not asked', async () => {
    const stream = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.ok(chunks.length > 1);
    assert.ok(chunks.every((c) => c.usage === undefined && c.choices.length === 1));
  });

  it('refuses a bad key with AuthenticationError in the OpenAI envelope', async () => {
    const bad = new OpenAI({ baseURL: platform.baseUrl(), apiKey: 'xero_demo_notarealkey', maxRetries: 0 });
    await assert.rejects(bad.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }), (err: unknown) => {
      assert.ok(err instanceof AuthenticationError);
      assert.equal(err.status, 401);
      assert.equal(err.type, 'authentication_error');
      assert.equal(err.code, 'invalid_api_key');
      validate('ErrorResponse', { error: err.error });
      assert.ok(err.requestID);
      return true;
    });
  });

  it('lists the endpoint model', async () => {
    const page = await client.models.list();
    validate('ListModelsResponse', { object: 'list', data: page.data });
    assert.equal(page.data[0]?.id, 'simulator', 'the model the demo endpoint names: the one its worker serves');
  });

  it('serves DNS-based URLs ({endpoint}.{project}.<base domain>)', async () => {
    const res = await rawRequest(platform.gateway.port, 'chat.demo.api.localhost', '/v1/chat/completions', platform.demoKey, {
      model: 'm',
      messages: [{ role: 'user', content: 'dns' }],
    });
    assert.equal(res.status, 200, res.body);
    validate('CreateChatCompletionResponse', JSON.parse(res.body));
  });

  it('rejects bad input with 400 and the right param', async () => {
    const res = await rawRequest(platform.gateway.port, undefined, '/demo/chat/v1/chat/completions', platform.demoKey, {
      model: 'm',
      messages: [{ role: 'user', content: 'x' }],
      temperature: 3,
    });
    assert.equal(res.status, 400);
    const body = JSON.parse(res.body);
    validate('ErrorResponse', body);
    assert.equal(body.error.type, 'invalid_request_error');
    assert.equal(body.error.param, 'temperature');
    const parse = await rawRequest(platform.gateway.port, undefined, '/demo/chat/v1/chat/completions', platform.demoKey, '{not json');
    assert.equal(parse.status, 400);
    assert.equal(JSON.parse(parse.body).error.code, 'json_parse_error');
    const missing = await rawRequest(platform.gateway.port, undefined, '/demo/chat/v1/chat/completions', platform.demoKey, {
      messages: [{ role: 'user', content: 'x' }],
    });
    assert.equal(missing.status, 400);
    assert.equal(JSON.parse(missing.body).error.param, 'model');
  });

  it('answers unknown routes with a 404 envelope and every response has X-Request-ID', async () => {
    const res = await rawRequest(platform.gateway.port, undefined, '/nope', undefined, undefined, 'GET');
    assert.equal(res.status, 404);
    assert.equal(JSON.parse(res.body).error.type, 'not_found_error');
    assert.ok(res.headers['x-request-id']);
  });

  it('keeps keys out of the logs and redacts authorization', () => {
    const leaks = platform.logs.lines.filter((l) => /xero_[a-z0-9-]+_[A-Za-z0-9]{16,}/.test(l));
    assert.deepEqual(leaks, []);
    assert.ok(platform.logs.lines.length > 10);
  });
});
