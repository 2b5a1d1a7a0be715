/**
 * Every documented chat-completions parameter (the properties of OpenAI's published
 * CreateChatCompletionRequest, vendored in test/fixtures/openai) is either honoured (200) or
 * refused with a 400 naming it in `error.param`, on each engine — never silently dropped. The
 * table here is the one in README.md ("Chat parameters by engine"); a parameter OpenAI adds to
 * the schema fails the completeness check until it is given a row.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { Engine } from '../../services/inference/src/engines/engine.js';
import { createLlamaCppEngine } from '../../services/inference/src/engines/llama-cpp/llama-cpp-engine.js';
import { writeTinyGguf } from '../../services/inference/src/engines/llama-cpp/tiny-gguf.js';
import { createOpenAIEngine } from '../../services/inference/src/engines/openai/openai-engine.js';
import { createSimulatorEngine } from '../../services/inference/src/engines/simulator/simulator-engine.js';
import { startMockOpenAI, type MockOpenAIServer } from '../fixtures/mock-openai-server.js';
import { createSchemaValidator } from '../helpers/openai-schemas.js';
import { SIMULATOR_DEFAULTS, startPlatform, type Platform } from '../helpers/platform.js';

type EngineName = 'llama-cpp' | 'openai' | 'simulator';
/** 'ok' = honoured (or passed through, for openai); otherwise the `param` the 400 names. */
type Outcome = 'ok' | { refused: string };
const ok = 'ok' as const;
const refused = (param: string): Outcome => ({ refused: param });
const all = (o: Outcome): Record<EngineName, Outcome> => ({ 'llama-cpp': o, openai: o, simulator: o });

const TOOLS = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 8 } }, required: ['city'], additionalProperties: false } } }];
const SCHEMA = { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { type: 'boolean' } }, required: ['a'], additionalProperties: false }, strict: true } };

/** Parameter → the extra request fields that set it, and what each engine does. */
const CASES: Record<string, { body: Record<string, unknown>; expect: Record<EngineName, Outcome> }> = {
  model: { body: { model: 'any-name' }, expect: all(ok) },
  messages: { body: { messages: [{ role: 'developer', content: 'Be brief.' }, { role: 'user', content: 'Hi', name: 'alice' }] }, expect: all(ok) },
  stream: { body: { stream: true }, expect: all(ok) },
  stream_options: { body: { stream: true, stream_options: { include_usage: true } }, expect: all(ok) },
  temperature: { body: { temperature: 0.3 }, expect: all(ok) },
  top_p: { body: { top_p: 0.5 }, expect: all(ok) },
  max_tokens: { body: { max_tokens: 3 }, expect: all(ok) },
  max_completion_tokens: { body: { max_completion_tokens: 3 }, expect: all(ok) },
  stop: { body: { stop: ['K'] }, expect: all(ok) },
  seed: { body: { seed: 42 }, expect: all(ok) },
  n: { body: { n: 2 }, expect: all(refused('n')) },
  presence_penalty: { body: { presence_penalty: 0.5 }, expect: { 'llama-cpp': ok, openai: ok, simulator: refused('presence_penalty') } },
  frequency_penalty: { body: { frequency_penalty: 0.5 }, expect: { 'llama-cpp': ok, openai: ok, simulator: refused('frequency_penalty') } },
  logit_bias: { body: { logit_bias: { '70': -100 } }, expect: { 'llama-cpp': ok, openai: ok, simulator: refused('logit_bias') } },
  logprobs: { body: { logprobs: true }, expect: all(refused('logprobs')) },
  top_logprobs: { body: { logprobs: true, top_logprobs: 2 }, expect: all(refused('logprobs')) },
  response_format: { body: { response_format: SCHEMA }, expect: { 'llama-cpp': ok, openai: ok, simulator: refused('response_format') } },
  tools: { body: { tools: TOOLS }, expect: all(ok) },
  tool_choice: { body: { tools: TOOLS, tool_choice: 'required' }, expect: all(ok) },
  parallel_tool_calls: { body: { tools: TOOLS, parallel_tool_calls: false }, expect: all(ok) },
  reasoning_effort: { body: { reasoning_effort: 'low' }, expect: { 'llama-cpp': refused('reasoning_effort'), openai: ok, simulator: refused('reasoning_effort') } },
  user: { body: { user: 'end-user-1' }, expect: all(ok) },
  safety_identifier: { body: { safety_identifier: 'end-user-1' }, expect: all(ok) },
  metadata: { body: { metadata: { team: 'search' } }, expect: all(ok) },
  service_tier: { body: { service_tier: 'flex' }, expect: all(refused('service_tier')) },
  store: { body: { store: true }, expect: all(refused('store')) },
  audio: { body: { audio: { voice: 'alloy', format: 'mp3' } }, expect: all(refused('audio')) },
  modalities: { body: { modalities: ['text', 'audio'] }, expect: all(refused('modalities')) },
  prediction: { body: { prediction: { type: 'content', content: 'x' } }, expect: all(refused('prediction')) },
  web_search_options: { body: { web_search_options: {} }, expect: all(refused('web_search_options')) },
  functions: { body: { functions: [{ name: 'f' }] }, expect: all(refused('functions')) },
  function_call: { body: { function_call: 'auto' }, expect: all(refused('function_call')) },
  verbosity: { body: { verbosity: 'low' }, expect: all(refused('verbosity')) },
  moderation: { body: { moderation: { mode: 'auto' } }, expect: all(refused('moderation')) },
  prompt_cache_key: { body: { prompt_cache_key: 'k' }, expect: all(refused('prompt_cache_key')) },
  prompt_cache_options: { body: { prompt_cache_options: {} }, expect: all(refused('prompt_cache_options')) },
  prompt_cache_retention: { body: { prompt_cache_retention: '24h' }, expect: all(refused('prompt_cache_retention')) },
};

const validate = createSchemaValidator();

/** The properties of the vendored CreateChatCompletionRequest (through its allOf / $ref parts). */
function documentedParameters(): string[] {
  const file = path.join(import.meta.dirname, '..', 'fixtures', 'openai', 'openai-chat-schemas.json');
  const schemas = (JSON.parse(readFileSync(file, 'utf8')) as { components: { schemas: Record<string, Record<string, unknown>> } }).components.schemas;
  const props = (s: Record<string, unknown>): string[] => {
    if (typeof s['$ref'] === 'string') return props(schemas[s['$ref'].split('/').at(-1)!]!);
    const parts = [...((s['allOf'] as Array<Record<string, unknown>> | undefined) ?? []), ...((s['anyOf'] as Array<Record<string, unknown>> | undefined) ?? [])];
    return [...parts.flatMap(props), ...Object.keys((s['properties'] as object | undefined) ?? {})];
  };
  return [...new Set(props(schemas['CreateChatCompletionRequest']!))].sort();
}

it('every documented chat parameter has a row', () => {
  assert.deepEqual(Object.keys(CASES).sort(), documentedParameters());
});

function suite(name: EngineName, engine: () => Promise<{ engine: Engine; close?: () => Promise<void> }>): void {
  describe(`chat parameters on the ${name} engine`, () => {
    let platform: Platform;
    let close: (() => Promise<void>) | undefined;
    before(async () => {
      const made = await engine();
      close = made.close;
      platform = await startPlatform({ engines: [made.engine], gatewayEnv: { GATEWAY_TTFT_TIMEOUT_MS: '60000' } });
    });
    after(async () => {
      await platform.stop();
      await close?.();
    });

    for (const [param, { body, expect }] of Object.entries(CASES)) {
      const outcome = expect[name];
      it(`${param}: ${outcome === 'ok' ? 'honoured' : `refused naming ${outcome.refused}`}`, async () => {
        const res = await fetch(`${platform.baseUrl()}/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${platform.demoKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 40, ...body }),
        });
        const text = await res.text();
        if (outcome === 'ok') {
          assert.equal(res.status, 200, text);
          if (body['stream'] !== true) validate('CreateChatCompletionResponse', JSON.parse(text));
          else assert.ok(text.trimEnd().endsWith('data: [DONE]'), text);
        } else {
          assert.equal(res.status, 400, text);
          const error = JSON.parse(text) as { error: { param: string | null; type: string } };
          validate('ErrorResponse', error);
          assert.equal(error.error.type, 'invalid_request_error');
          assert.equal(error.error.param, outcome.refused);
        }
      });
    }
  });
}

suite('simulator', async () => ({ engine: createSimulatorEngine(SIMULATOR_DEFAULTS) }));

suite('llama-cpp', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'params-'));
  const modelPath = path.join(dir, 'tiny.gguf');
  await writeTinyGguf(modelPath);
  return { engine: createLlamaCppEngine({ modelPath, gpu: 'cpu', threads: 1, parallel: 1, contextSize: 1024 }, { logger: pino({ level: 'silent' }) }) };
});

suite('openai', async () => {
  const mock: MockOpenAIServer = await startMockOpenAI({ toolCallArguments: '{"city":"Oslo"}' });
  return { engine: createOpenAIEngine({ baseUrl: mock.url, contextWindow: 4096 }, { logger: pino({ level: 'silent' }) }), close: () => mock.close() };
});
