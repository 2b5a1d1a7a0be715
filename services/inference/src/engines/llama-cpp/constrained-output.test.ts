/**
 * Grammar-constrained output, tool calls and the penalty / bias samplers on the tiny model. The
 * model itself only walks the ASCII table; whatever it "wants", the grammar makes the output
 * parse and match the schema, which is what a client relies on.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { AppError } from '../../../../../lib/errors/app-error.js';
import { createToolCallAssembly } from '../../../../../lib/chat/tool-call-assembly.js';
import type { GenerateParams, ToolSpec } from '../engine.js';
import { createLlamaCppEngine, type LlamaCppEngine } from './llama-cpp-engine.js';
import { collect, FULL_REPLY, silent } from '../../../../../test/helpers/llama-engine-kit.js';
import { writeTinyGguf } from './tiny-gguf.js';

const WEATHER: ToolSpec = {
  name: 'get_weather',
  description: 'Current weather in a city',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string', maxLength: 12 }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
    required: ['city', 'unit'],
    additionalProperties: false,
  },
  strict: true,
};
const PERSON = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 10 },
    age: { type: 'integer' },
    tags: { type: 'array', items: { type: 'string', maxLength: 5 }, maxItems: 2 },
    nickname: { type: ['string', 'null'], maxLength: 5 },
  },
  required: ['name', 'age', 'tags', 'nickname'],
  additionalProperties: false,
};

describe('llama-cpp constrained output on the tiny model', () => {
  let dir: string;
  let engine: LlamaCppEngine;
  const ajv = new Ajv2020({ strict: false });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'llama-cpp-constrained-'));
    const modelPath = join(dir, 'tiny.gguf');
    await writeTinyGguf(modelPath);
    engine = createLlamaCppEngine({ modelPath, allowDownload: false, gpu: 'cpu', threads: 1, parallel: 1, contextSize: 2048 }, { logger: silent });
    await engine.start();
  });
  after(async () => {
    await engine?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function calls(over: Partial<GenerateParams>) {
    const r = await collect(engine, { maxTokens: 200, ...over });
    const assembly = createToolCallAssembly();
    r.deltas.forEach((d) => d.toolCalls?.forEach((c) => assembly.add(c)));
    return { ...r, calls: assembly.calls() };
  }

  it('json_schema: the output parses and validates, at any temperature', async () => {
    for (const temperature of [0, 1.5]) {
      const r = await collect(engine, { temperature, seed: 7, maxTokens: 200, responseFormat: { type: 'json_schema', name: 'person', schema: PERSON, strict: true } });
      assert.equal(r.finishReason, 'stop', r.text);
      const value: unknown = JSON.parse(r.text);
      assert.ok(ajv.validate(PERSON, value), `${r.text}: ${ajv.errorsText()}`);
    }
  });

  it('json_object: the output is one JSON object', async () => {
    const r = await collect(engine, { temperature: 1, seed: 3, maxTokens: 300, responseFormat: { type: 'json_object' } });
    if (r.finishReason === 'stop') {
      const value: unknown = JSON.parse(r.text);
      assert.equal(typeof value, 'object');
      assert.ok(value !== null && !Array.isArray(value));
    } else {
      assert.equal(r.finishReason, 'length');
      assert.ok(r.text.trimStart().startsWith('{'));
    }
  });

  it('a schema keyword the grammar cannot enforce is refused naming response_format', async () => {
    await assert.rejects(
      collect(engine, { responseFormat: { type: 'json_schema', name: 'p', schema: { type: 'string', pattern: '^a+$' }, strict: true } }),
      (err: unknown) => err instanceof AppError && err.kind === 'invalid_request' && err.param === 'response_format' && /pattern/.test(err.message),
    );
    await assert.rejects(
      collect(engine, { tools: [{ ...WEATHER, parameters: { type: 'object', properties: { n: { type: 'number', minimum: 1 } } } }], toolChoice: { mode: 'required' } }),
      (err: unknown) => err instanceof AppError && err.param === 'tools' && /minimum/.test(err.message),
    );
  });

  it('tool_choice required / named: one call whose arguments validate, finish_reason tool_calls', async () => {
    const other: ToolSpec = { name: 'get_time', description: 'Time now', parameters: { type: 'object', properties: {}, additionalProperties: false }, strict: false };
    for (const toolChoice of [{ mode: 'required' as const }, { mode: 'named' as const, name: 'get_weather' }]) {
      const r = await calls({ tools: [WEATHER, other], toolChoice, temperature: 0.8, seed: 11 });
      assert.equal(r.finishReason, 'tool_calls', JSON.stringify(r.text));
      assert.equal(r.text, '');
      assert.equal(r.calls.length, 1);
      const call = r.calls[0]!;
      assert.match(call.id, /^call_[0-9a-f]{24}$/);
      const tool = [WEATHER, other].find((t) => t.name === call.name);
      assert.ok(tool, call.name);
      if (toolChoice.mode === 'named') assert.equal(call.name, 'get_weather');
      assert.ok(ajv.validate(tool.parameters, JSON.parse(call.arguments)), `${call.arguments}: ${ajv.errorsText()}`);
      assert.ok(r.deltas.filter((d) => d.toolCalls).length >= 2, 'the head and the arguments come as separate pieces');
    }
  });

  it('tool_choice auto: the greedy tiny model answers with text (its reply never opens with "{")', async () => {
    const r = await calls({ tools: [WEATHER], toolChoice: { mode: 'auto' }, temperature: 0 });
    assert.equal(r.finishReason, 'stop');
    assert.equal(r.calls.length, 0);
    assert.equal(r.text, FULL_REPLY);
  });

  it('renders an earlier call and its result into the prompt', async () => {
    const r = await collect(engine, {
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius"}' }] },
        { role: 'tool', content: '{"temp":21}', toolCallId: 'call_1' },
      ],
      tools: [WEATHER],
      toolChoice: { mode: 'none' },
    });
    assert.equal(r.finishReason, 'stop');
    const bare = await collect(engine, { messages: [{ role: 'user', content: 'Weather in Paris?' }] });
    assert.ok(r.promptTokens > bare.promptTokens + 10, 'the call and its result are in the prompt');
  });

  it('logit_bias -100 bans a token; ids outside the vocabulary are refused', async () => {
    const banned = 6 + 'C'.charCodeAt(0); // byte tokens start at id 6
    const r = await collect(engine, { logitBias: { [banned]: -100 }, maxTokens: 5 });
    assert.ok(!r.text.includes('C'), r.text);
    assert.notEqual(r.text, FULL_REPLY.slice(0, 5));
    await assert.rejects(collect(engine, { logitBias: { 100000: 5 } }), (err: unknown) => err instanceof AppError && err.param === 'logit_bias');
  });

  it('presence and frequency penalties go through llama.cpp\'s penalty sampler (values outside node-llama-cpp\'s 0..1 are accepted)', async () => {
    const plain = await collect(engine, { messages: [{ role: 'user', content: 'AAAA' }], maxTokens: 8 });
    const penalized = await collect(engine, { messages: [{ role: 'user', content: 'AAAA' }], maxTokens: 8, frequencyPenalty: 2, presencePenalty: 2, temperature: 1, seed: 1 });
    assert.equal(plain.finishReason, 'length');
    assert.equal(penalized.completionTokens, 8);
  });
});
