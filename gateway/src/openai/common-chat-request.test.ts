import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '../../../lib/errors/app-error.js';
import { commonChatRequest } from './common-chat-request.js';
import { chatCompletionRequest, parseChatCompletionRequest, parseChatCompletionRequestBySchema, REFUSED } from './schema.js';

/**
 * What the common shape may accept: the schema accepts it too, with an equal value, and no
 * refused parameter is in it. Everything it does not accept goes through the schema as before,
 * so together these mean the parse of every body is what the schema alone gives.
 */
function assertSameAsSchema(body: unknown): void {
  const common = commonChatRequest(body);
  if (common === undefined) return;
  const schema = chatCompletionRequest.safeParse(body);
  assert.ok(schema.success, `the schema refuses a body the common shape accepted: ${JSON.stringify(body)}`);
  assert.deepStrictEqual(common, schema.data, JSON.stringify(body));
  for (const param of Object.keys(REFUSED)) assert.ok(!Object.hasOwn(body as object, param), param);
}

const json = (text: string): unknown => JSON.parse(text);

/** A parse's result or its error, as the error response shows it. */
function outcome(parse: (body: unknown) => unknown, body: unknown): unknown {
  try {
    return { value: parse(body) };
  } catch (err) {
    assert.ok(err instanceof AppError);
    return { error: { kind: err.kind, code: err.code, message: err.message, param: err.param } };
  }
}

const VALID: unknown[] = [
  { model: 'm', messages: [{ role: 'user', content: 'hi' }] },
  { model: 'mock', messages: [{ role: 'user', content: 'Say hello to the benchmark in a few words.' }], max_tokens: 16 },
  {
    model: 'demo',
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'developer', content: '' },
      { role: 'user', content: 'Hi', name: 'alice' },
      { role: 'assistant', content: null },
      { role: 'assistant' },
      { role: 'user', content: 'again', name: '' },
    ],
    stream: true,
    stream_options: { include_usage: true },
    temperature: 0,
    top_p: 1,
    n: 1,
    max_tokens: 1,
    max_completion_tokens: Number.MAX_SAFE_INTEGER,
    seed: -42,
    stop: ['\n', 'END', 'x', 'y'],
    presence_penalty: -2,
    frequency_penalty: 2,
    parallel_tool_calls: false,
    logprobs: false,
    user: 'u'.repeat(256),
    safety_identifier: 'sid',
  },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: null, stream_options: null, temperature: null, top_p: null, n: null },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: null, max_completion_tokens: null, seed: null, stop: null },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], presence_penalty: null, frequency_penalty: null, user: null, safety_identifier: null },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], parallel_tool_calls: null, logprobs: null, stream_options: {} },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], stop: 'END', temperature: 2, top_p: 0, seed: Number.MIN_SAFE_INTEGER },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: false, stream_options: { include_usage: false }, temperature: 1.25 },
  { model: 'm', messages: Array.from({ length: 2048 }, () => ({ role: 'user', content: 'x' })) },
  json('{"model":"m","messages":[{"content":"hi","role":"user"}],"temperature":-0}'),
  json('{"messages":[{"role":"assistant","content":"ok","name":"bot"}],"model":"m","max_tokens":1e3}'),
];

/** Bodies the common shape leaves to the schema: other shapes, and every kind of invalid value. */
const OTHER: unknown[] = [
  null, [], 'text', 42, Object.create(null),
  {},
  { model: 'm' },
  { messages: [{ role: 'user', content: 'hi' }] },
  { model: '', messages: [{ role: 'user', content: 'hi' }] },
  { model: 7, messages: [{ role: 'user', content: 'hi' }] },
  { model: 'm', messages: [] },
  { model: 'm', messages: {} },
  { model: 'm', messages: Array.from({ length: 2049 }, () => ({ role: 'user', content: 'x' })) },
  { model: 'm', messages: [{ role: 'tool', content: 'r', tool_call_id: 'c1' }] },
  { model: 'm', messages: [{ role: 'tool', content: 'r' }] },
  { model: 'm', messages: [{ role: 'boss', content: 'hi' }] },
  { model: 'm', messages: [{ content: 'hi' }] },
  { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] },
  { model: 'm', messages: [{ role: 'user', content: 3 }] },
  { model: 'm', messages: [{ role: 'user', content: 'hi', name: 'n'.repeat(257) }] },
  { model: 'm', messages: [{ role: 'user', content: 'hi', name: 5 }] },
  { model: 'm', messages: [{ role: 'user', content: 'hi', extra: true }] },
  { model: 'm', messages: [{ role: 'assistant', content: null, tool_calls: [] }] },
  { model: 'm', messages: [null] },
  { model: 'm', messages: [['user', 'hi']] },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], tools: [] },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], unknown_field: 1 },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], store: false },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], service_tier: 'auto' },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], audio: {} },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], top_logprobs: 2 },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: 'yes' },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], stream_options: { include_usage: 'yes' } },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], stream_options: { other: true } },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], stream_options: [] },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], temperature: 2.01 },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], temperature: -0.1 },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], temperature: Number.NaN },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], temperature: '1' },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], top_p: 1.5 },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], n: 2 },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 0 },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1.5 },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: Number.POSITIVE_INFINITY },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 2 ** 53 },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], seed: 0.5 },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], stop: '' },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], stop: ['a', ''] },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], stop: ['a', 'b', 'c', 'd', 'e'] },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], stop: [1] },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], presence_penalty: 2.5 },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], frequency_penalty: -3 },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], logprobs: 1 },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], user: 'u'.repeat(257) },
  { model: 'm', messages: [{ role: 'user', content: 'hi' }], safety_identifier: 9 },
  json('{"__proto__":{"x":1},"model":"m","messages":[{"role":"user","content":"hi"}]}'),
  json('{"model":"m","messages":[{"__proto__":null,"role":"user","content":"hi"}]}'),
];

describe('the common chat request shape', () => {
  it('accepts the common valid bodies, with exactly the value the schema returns', () => {
    for (const body of VALID) {
      assert.notEqual(commonChatRequest(body), undefined, JSON.stringify(body).slice(0, 200));
      assertSameAsSchema(body);
    }
  });

  it('leaves every other shape and every invalid value to the schema', () => {
    for (const body of OTHER) {
      assert.equal(commonChatRequest(body), undefined, String(JSON.stringify(body)).slice(0, 200));
    }
  });

  it('never accepts what the schema would refuse or change: random variations of the common shape', () => {
    // Values near every bound, of every JSON type, in every field of the common shape.
    const values: unknown[] = [
      null, true, false, 0, -0, 1, -1, 0.5, 1.5, 2, 2.5, -2, -2.5, 3, 20, 21, 256, 2 ** 53, -(2 ** 53), 1e308,
      '', 'a', 'x'.repeat(256), 'x'.repeat(257), 'user', 'tool', 'system', [], ['a'], ['a', 'b', 'c', 'd', 'e'], [''], {},
      { include_usage: true }, { include_usage: 1 }, [{ role: 'user', content: 'hi' }],
    ];
    const fields = [
      'model', 'messages', 'stream', 'stream_options', 'temperature', 'top_p', 'n', 'max_tokens', 'max_completion_tokens',
      'seed', 'stop', 'presence_penalty', 'frequency_penalty', 'parallel_tool_calls', 'logprobs', 'user', 'safety_identifier',
      'top_logprobs', 'service_tier', 'store', 'tools', 'metadata', 'other',
    ];
    const messageFields = ['role', 'content', 'name', 'tool_call_id', 'other'];
    let seed = 12345;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const pick = <T>(items: readonly T[]): T => items[random(items.length)]!;
    let accepted = 0;
    for (let i = 0; i < 10_000; i++) {
      const message: Record<string, unknown> = { role: 'user', content: 'hi' };
      for (let j = random(3); j > 0; j--) message[pick(messageFields)] = pick(values);
      const body: Record<string, unknown> = { model: 'm', messages: [message] };
      for (let j = random(4); j > 0; j--) body[pick(fields)] = pick(values);
      if (commonChatRequest(body) !== undefined) accepted++;
      assertSameAsSchema(body);
      assert.deepStrictEqual(outcome(parseChatCompletionRequest, body), outcome(parseChatCompletionRequestBySchema, body), JSON.stringify(body));
    }
    assert.ok(accepted > 500, `only ${accepted} variations were in the common shape`);
  });

  it('parses every body, valid or not, as the schema alone does: the same value or the same error', () => {
    for (const body of [...VALID, ...OTHER]) {
      assert.deepStrictEqual(outcome(parseChatCompletionRequest, body), outcome(parseChatCompletionRequestBySchema, body), String(JSON.stringify(body)).slice(0, 200));
    }
  });

  it('gives the error texts clients see for invalid common-looking bodies', () => {
    assert.deepStrictEqual(parseChatCompletionRequest(VALID[0]), { model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    assert.throws(
      () => parseChatCompletionRequest({ model: 'm', messages: [{ role: 'user', content: 'hi' }], temperature: 3 }),
      { message: "Invalid 'temperature': Too big: expected number to be <=2." },
    );
    assert.throws(
      () => parseChatCompletionRequest({ model: 'm', messages: [{ role: 'tool', content: 'r' }] }),
      { message: "A 'tool' message needs 'tool_call_id'." },
    );
  });
});
