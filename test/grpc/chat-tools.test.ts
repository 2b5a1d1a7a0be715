/**
 * The gRPC front door keeps in step with the HTTP chat surface: tools and tool_choice in the
 * request, tool calls (head, then argument fragments) in the deltas and FINISH_REASON_TOOL_CALLS,
 * a tool result in the next turn, and engine refusals naming the field. The engine is the
 * simulator's deterministic tool-call mode (a test tool, not inference).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Status } from 'nice-grpc';
import { FinishReason, ResponseFormatType, ToolChoiceMode, type CreateChatCompletionResponse } from '../../client/chat-client.js';
import { startPlatform, type Platform } from '../helpers/platform.js';
import { ask, clientFor, failure } from './helpers.js';

const WEATHER = {
  name: 'get_weather',
  description: 'Weather in a city',
  parametersJson: JSON.stringify({ type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1 } }, required: ['city', 'days'] }),
  strict: true,
};

describe('gRPC front door: tools', () => {
  let platform: Platform;
  before(async () => {
    platform = await startPlatform();
  });
  after(() => platform.stop());

  it('streams a tool call and FINISH_REASON_TOOL_CALLS; the tool result gets a text answer', async () => {
    const chat = clientFor(platform);
    try {
      const events: CreateChatCompletionResponse[] = [];
      for await (const e of chat.createChatCompletion(ask({ tools: [WEATHER], toolChoice: ToolChoiceMode.TOOL_CHOICE_MODE_REQUIRED }))) events.push(e);
      const pieces = events.flatMap((e) => e.delta?.toolCalls ?? []);
      assert.ok(pieces.length >= 2, 'a head and argument fragments');
      const head = pieces[0]!;
      assert.equal(head.name, 'get_weather');
      assert.match(head.id, /^call_/);
      assert.ok(pieces.slice(1).every((p) => p.id === '' && p.name === '' && p.index === 0));
      const args = pieces.map((p) => p.arguments).join('');
      assert.deepEqual(JSON.parse(args), { city: '', days: 1 }, 'the smallest arguments the schema accepts');
      assert.equal(events.at(-1)?.final?.finishReason, FinishReason.FINISH_REASON_TOOL_CALLS);

      const reply = await chat.complete(ask({
        maxCompletionTokens: 50,
        tools: [WEATHER],
        messages: [
          { role: 'user', content: 'Weather?' },
          { role: 'assistant', content: '', toolCalls: [{ id: head.id, name: 'get_weather', arguments: args }] },
          { role: 'tool', content: '{"temp": 20}', toolCallId: head.id },
        ],
      }));
      assert.equal(reply.finishReason, FinishReason.FINISH_REASON_STOP);
      assert.ok(reply.text.length > 0);
    } finally {
      chat.close();
    }
  });

  it('refuses what the engine cannot honour, naming the field', async () => {
    const chat = clientFor(platform);
    try {
      const format = { type: ResponseFormatType.RESPONSE_FORMAT_TYPE_JSON_OBJECT, name: '', schemaJson: '', strict: false };
      const err = await failure(chat.complete(ask({ responseFormat: format })), Status.INVALID_ARGUMENT, 'unsupported_parameter');
      assert.equal(err.info['param'], 'response_format');
      const named = await failure(
        chat.complete(ask({ tools: [WEATHER], toolChoice: ToolChoiceMode.TOOL_CHOICE_MODE_NAMED, toolChoiceName: 'nope' })),
        Status.INVALID_ARGUMENT,
        'invalid_request',
      );
      assert.equal(named.info['param'], 'tool_choice');
    } finally {
      chat.close();
    }
  });
});
