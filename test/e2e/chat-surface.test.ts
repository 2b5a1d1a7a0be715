/**
 * The chat surface real applications use, driven by the official `openai` SDK, unchanged, every
 * hop real gRPC: a two-turn tool-calling conversation (the model calls a tool, the app answers
 * with a `tool` message, the model replies), streamed and not, and a `json_schema` response —
 * on llama.cpp with the generated tiny model (grammar-constrained, so the call's arguments and
 * the JSON always parse and validate whatever the model) and through the openai engine in front
 * of a mock upstream that emits tool calls as vLLM does. Bodies and chunks are validated against
 * OpenAI's published schemas.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import OpenAI from 'openai';
import type { ChatCompletionChunk, ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import { pino } from 'pino';
import { writeTinyGguf } from '../../services/inference/src/engines/llama-cpp/tiny-gguf.js';
import { createLlamaCppEngine } from '../../services/inference/src/engines/llama-cpp/llama-cpp-engine.js';
import { createOpenAIEngine } from '../../services/inference/src/engines/openai/openai-engine.js';
import { startMockOpenAI, type MockOpenAIServer } from '../fixtures/mock-openai-server.js';
import { createSchemaValidator } from '../helpers/openai-schemas.js';
import { startPlatform, type Platform } from '../helpers/platform.js';

const validate = createSchemaValidator();
const ajv = new Ajv2020({ strict: false });

const WEATHER_PARAMS = {
  type: 'object',
  properties: { city: { type: 'string', maxLength: 12 }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
  required: ['city', 'unit'],
  additionalProperties: false,
};
const TOOLS: ChatCompletionTool[] = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: WEATHER_PARAMS, strict: true } },
];
const QUESTION: ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is the weather in Paris?' }];
const PERSON = {
  type: 'object',
  properties: { name: { type: 'string', maxLength: 10 }, age: { type: 'integer' }, tags: { type: 'array', items: { type: 'string', maxLength: 4 }, maxItems: 2 } },
  required: ['name', 'age', 'tags'],
  additionalProperties: false,
};

/** Reassembles the streamed tool calls and text of a chat completion stream, validating every chunk. */
async function readStream(stream: AsyncIterable<ChatCompletionChunk>) {
  const calls: Array<{ id: string; name: string; arguments: string }> = [];
  let text = '';
  let finish: string | null = null;
  let first = true;
  for await (const chunk of stream) {
    validate('CreateChatCompletionStreamResponse', chunk);
    const choice = chunk.choices[0];
    if (!choice) continue;
    if (first) assert.equal(choice.delta.role, 'assistant', 'the first chunk carries the role');
    first = false;
    text += choice.delta.content ?? '';
    for (const piece of choice.delta.tool_calls ?? []) {
      if (piece.id !== undefined) {
        assert.equal(piece.index, calls.length, 'a new call opens at the next index');
        assert.ok(piece.function?.name, 'the first piece names the function');
        calls.push({ id: piece.id, name: piece.function.name, arguments: piece.function.arguments ?? '' });
      } else {
        const call = calls[piece.index];
        assert.ok(call, 'argument fragments follow their call head');
        call.arguments += piece.function?.arguments ?? '';
      }
    }
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  return { calls, text, finish };
}

/** The second turn of the conversation: the assistant's call and the app's tool result. */
function secondTurn(call: { id: string; name: string; arguments: string }): ChatCompletionMessageParam[] {
  return [
    ...QUESTION,
    { role: 'assistant', content: null, tool_calls: [{ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } }] },
    { role: 'tool', tool_call_id: call.id, content: '{"temperature": 21, "unit": "celsius"}' },
  ];
}

describe('chat surface on llama.cpp (tiny generated model) through the SDK', () => {
  let platform: Platform;
  let client: OpenAI;
  before(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'surface-'));
    const modelPath = path.join(dir, 'tiny.gguf');
    await writeTinyGguf(modelPath);
    // 2048 tokens of context: the tiny model spends one token per character of the tool documentation.
    const engine = createLlamaCppEngine(
      { modelPath, gpu: 'cpu', threads: 1, parallel: 1, contextSize: 2048, modelName: 'xerotier-tiny-successor' },
      { logger: pino({ level: 'silent' }) },
    );
    platform = await startPlatform({ engines: [engine] });
    client = new OpenAI({ baseURL: platform.baseUrl(), apiKey: platform.demoKey, maxRetries: 0 });
  });
  after(async () => platform.stop());

  it('two-turn tool conversation, not streamed: a call whose arguments validate, then a reply', async () => {
    const first = await client.chat.completions.create({ model: 'm', messages: QUESTION, tools: TOOLS, tool_choice: 'required', temperature: 0.9, seed: 5 });
    validate('CreateChatCompletionResponse', first);
    const choice = first.choices[0];
    assert.equal(choice?.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    const call = choice.message.tool_calls?.[0];
    assert.ok(call && call.type === 'function');
    assert.equal(choice.message.tool_calls?.length, 1);
    assert.equal(call.function.name, 'get_weather');
    assert.ok(ajv.validate(WEATHER_PARAMS, JSON.parse(call.function.arguments)), call.function.arguments);

    const second = await client.chat.completions.create({
      model: 'm',
      messages: secondTurn({ id: call.id, name: call.function.name, arguments: call.function.arguments }),
      tools: TOOLS,
      temperature: 0,
    });
    validate('CreateChatCompletionResponse', second);
    assert.equal(second.choices[0]?.finish_reason, 'stop');
    assert.equal(second.choices[0]?.message.tool_calls, undefined);
    assert.ok((second.choices[0]?.message.content ?? '').length > 0);
    assert.ok((second.usage?.prompt_tokens ?? 0) > (first.usage?.prompt_tokens ?? 0), 'the call and its result are in the prompt');
  });

  it('two-turn tool conversation, streamed: head, argument fragments, finish_reason tool_calls', async () => {
    const first = await readStream(
      await client.chat.completions.create({ model: 'm', messages: QUESTION, tools: TOOLS, tool_choice: { type: 'function', function: { name: 'get_weather' } }, stream: true, temperature: 0.9, seed: 9 }),
    );
    assert.equal(first.finish, 'tool_calls');
    assert.equal(first.text, '');
    assert.equal(first.calls.length, 1);
    const call = first.calls[0]!;
    assert.match(call.id, /^call_/);
    assert.ok(ajv.validate(WEATHER_PARAMS, JSON.parse(call.arguments)), call.arguments);

    const second = await readStream(await client.chat.completions.create({ model: 'm', messages: secondTurn(call), tools: TOOLS, stream: true, temperature: 0 }));
    assert.equal(second.finish, 'stop');
    assert.equal(second.calls.length, 0);
    assert.ok(second.text.length > 0);
  });

  it('json_schema: the content parses and validates, streamed and not', async () => {
    const response_format = { type: 'json_schema' as const, json_schema: { name: 'person', schema: PERSON, strict: true } };
    const r = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'A person' }], response_format, temperature: 1, seed: 2 });
    validate('CreateChatCompletionResponse', r);
    assert.equal(r.choices[0]?.finish_reason, 'stop');
    assert.ok(ajv.validate(PERSON, JSON.parse(r.choices[0]?.message.content ?? '')), r.choices[0]?.message.content ?? '');
    const streamed = await readStream(await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Another' }], response_format, stream: true, temperature: 1, seed: 3 }));
    assert.ok(ajv.validate(PERSON, JSON.parse(streamed.text)), streamed.text);
  });

  it('an unsupported schema keyword is a 400 naming response_format; logprobs a 400 naming logprobs', async () => {
    await assert.rejects(
      client.chat.completions.create({
        model: 'm',
        messages: QUESTION,
        response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { n: { type: 'number', multipleOf: 3 } } } } },
      }),
      (err: unknown) => err instanceof OpenAI.BadRequestError && err.param === 'response_format' && /multipleOf/.test(err.message),
    );
    await assert.rejects(
      client.chat.completions.create({ model: 'm', messages: QUESTION, logprobs: true }),
      (err: unknown) => err instanceof OpenAI.BadRequestError && err.param === 'logprobs',
    );
  });
});

describe('chat surface through the openai engine (mock upstream emitting tool calls)', () => {
  let platform: Platform;
  let client: OpenAI;
  let mock: MockOpenAIServer;
  before(async () => {
    mock = await startMockOpenAI({ toolCallArguments: '{"city":"Paris","unit":"celsius"}', reasoning: 'The user wants weather.' });
    const engine = createOpenAIEngine({ baseUrl: mock.url, contextWindow: 4096 }, { logger: pino({ level: 'silent' }) });
    platform = await startPlatform({ engines: [engine] });
    client = new OpenAI({ baseURL: platform.baseUrl(), apiKey: platform.demoKey, maxRetries: 0 });
  });
  after(async () => {
    await platform.stop();
    await mock.close();
  });

  it('passes tools, tool_choice and the history through, and relays the calls, not streamed', async () => {
    const first = await client.chat.completions.create({ model: 'm', messages: QUESTION, tools: TOOLS, tool_choice: 'auto', parallel_tool_calls: false });
    validate('CreateChatCompletionResponse', first);
    const sent = mock.lastRequestBody() as Record<string, unknown>;
    assert.deepEqual(sent['tools'], TOOLS);
    assert.equal(sent['tool_choice'], 'auto');
    assert.equal(sent['parallel_tool_calls'], false);
    const call = first.choices[0]?.message.tool_calls?.[0];
    assert.equal(first.choices[0]?.finish_reason, 'tool_calls');
    assert.ok(call && call.type === 'function');
    assert.equal(call.function.name, 'get_weather');
    assert.equal(call.function.arguments, '{"city":"Paris","unit":"celsius"}');

    const second = await client.chat.completions.create({ model: 'm', messages: secondTurn({ id: call.id, name: call.function.name, arguments: call.function.arguments }), tools: TOOLS });
    validate('CreateChatCompletionResponse', second);
    const history = (mock.lastRequestBody() as { messages: unknown[] }).messages;
    assert.deepEqual(history.slice(1), [
      { role: 'assistant', content: null, tool_calls: [{ id: call.id, type: 'function', function: { name: 'get_weather', arguments: call.function.arguments } }] },
      { role: 'tool', content: '{"temperature": 21, "unit": "celsius"}', tool_call_id: call.id },
    ]);
    assert.equal(second.choices[0]?.finish_reason, 'stop');
    assert.ok((second.choices[0]?.message.content ?? '').length > 0);
    assert.equal((second.choices[0]?.message as { reasoning_content?: string }).reasoning_content, 'The user wants weather.');
  });

  it('relays streamed tool calls: head, argument fragments, finish_reason tool_calls; then a streamed reply', async () => {
    const first = await readStream(await client.chat.completions.create({ model: 'm', messages: QUESTION, tools: TOOLS, stream: true }));
    assert.equal(first.finish, 'tool_calls');
    assert.deepEqual(first.calls.map((c) => [c.name, c.arguments]), [['get_weather', '{"city":"Paris","unit":"celsius"}']]);
    const second = await readStream(await client.chat.completions.create({ model: 'm', messages: secondTurn(first.calls[0]!), tools: TOOLS, stream: true }));
    assert.equal(second.finish, 'stop');
    assert.ok(second.text.length > 0);
  });

  it('passes response_format json_schema, penalties, logit_bias, reasoning_effort and user through', async () => {
    const response_format = { type: 'json_schema' as const, json_schema: { name: 'person', schema: PERSON, strict: true } };
    await client.chat.completions.create({
      model: 'm',
      messages: QUESTION,
      response_format,
      presence_penalty: 0.5,
      frequency_penalty: -0.5,
      logit_bias: { '42': -100 },
      reasoning_effort: 'low',
      user: 'end-user-7',
    });
    const sent = mock.lastRequestBody() as Record<string, unknown>;
    assert.deepEqual(sent['response_format'], response_format);
    assert.equal(sent['presence_penalty'], 0.5);
    assert.equal(sent['frequency_penalty'], -0.5);
    assert.deepEqual(sent['logit_bias'], { '42': -100 });
    assert.equal(sent['reasoning_effort'], 'low');
    assert.equal(sent['user'], 'end-user-7');
  });
});
