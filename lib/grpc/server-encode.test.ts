/** Responses encoded through the reused writer are the same bytes, each message on its own. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fromTsProtoServiceDefinition } from 'nice-grpc/lib/service-definitions/ts-proto.js';
import { GenerateResponse, InferenceServiceDefinition } from '../../gen/xerotier/inference/v1/inference_service.js';
import { MAX_KEPT_BYTES, withReusedResponseWriter } from './server-encode.js';

const plain = fromTsProtoServiceDefinition(InferenceServiceDefinition);
const reused = fromTsProtoServiceDefinition(withReusedResponseWriter(InferenceServiceDefinition));

const messages = [
  { start: { model: 'm', systemFingerprint: 'fp_1', workerId: 'w-1', promptTokens: 12 } },
  { delta: { text: 'Hello', tokenCount: 1, toolCalls: [], reasoning: '' } },
  { delta: { text: 'x'.repeat(MAX_KEPT_BYTES * 2), tokenCount: 9, toolCalls: [{ index: 0, id: 'c', name: 'f', arguments: '{}' }], reasoning: 'r' } },
  { delta: { text: ' world', tokenCount: 1 } },
  { final: { finishReason: 1, usage: { promptTokens: 12, completionTokens: 11 } } },
];

describe('withReusedResponseWriter', () => {
  it('encodes every response to the same bytes as a fresh writer, and no message shares memory with the next', () => {
    const serialize = (definition: typeof plain, value: unknown): Uint8Array => definition['generate']!.responseSerialize(value);
    const encoded = messages.map((m) => serialize(reused, m));
    encoded.forEach((bytes, i) => {
      assert.deepEqual(bytes, serialize(plain, messages[i]));
      assert.deepEqual(GenerateResponse.decode(bytes), GenerateResponse.fromPartial(messages[i] ?? {}));
    });
    assert.notEqual(encoded[1]?.buffer, encoded[3]?.buffer);
  });

  it('a response that fails to encode leaves nothing behind for the next one', () => {
    const serialize = reused['generate']!.responseSerialize;
    assert.throws(() => serialize({ delta: { text: 'ok', tokenCount: 2 ** 40 } }), /int32/);
    const bytes = serialize(messages[1]);
    assert.deepEqual(GenerateResponse.decode(bytes), GenerateResponse.fromPartial(messages[1] ?? {}));
  });
});
