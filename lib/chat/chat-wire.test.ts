import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FinishReason as ProtoFinishReason, Role } from '../../gen/xerotier/inference/v1/inference_service.js';
import { AppError } from '../errors/app-error.js';
import { clampMaxTokens, completionRoom, effectiveContextWindow } from './context-window.js';
import { finishReasonFromOpenAI, finishReasonToProto, openAIFinishReason } from './finish-reasons.js';
import { contentText } from './messages.js';
import { estimatePromptTokens } from './prompt-tokens.js';
import { CHAT_ROLES, roleFromProto, roleToProto } from './roles.js';
import { SAMPLING_DEFAULTS, withSamplingDefaults } from './sampling.js';

describe('chat roles', () => {
  it('every OpenAI role survives the trip through the proto enum, and no two share a value', () => {
    for (const role of CHAT_ROLES) assert.equal(roleFromProto(roleToProto[role]), role);
    assert.equal(new Set(CHAT_ROLES.map((r) => roleToProto[r])).size, CHAT_ROLES.length);
  });

  it('unspecified and unknown proto roles have no OpenAI role', () => {
    assert.equal(roleFromProto(Role.ROLE_UNSPECIFIED), undefined);
    assert.equal(roleFromProto(Role.UNRECOGNIZED), undefined);
    assert.equal(roleFromProto(99 as Role), undefined);
  });
});

describe('finish reasons', () => {
  it('engine → proto → OpenAI keeps stop and length', () => {
    assert.equal(openAIFinishReason(finishReasonToProto.stop), 'stop');
    assert.equal(openAIFinishReason(finishReasonToProto.length), 'length');
    assert.equal(finishReasonToProto.cancelled, ProtoFinishReason.FINISH_REASON_CANCELLED);
    assert.equal(openAIFinishReason(ProtoFinishReason.FINISH_REASON_UNSPECIFIED), 'stop');
  });

  it("an upstream's finish_reason reads as length only when it says length", () => {
    assert.equal(finishReasonFromOpenAI('length'), 'length');
    assert.equal(finishReasonFromOpenAI('tool_calls'), 'tool_calls');
    for (const other of ['stop', 'content_filter', 'abort', null, undefined, 3]) {
      assert.equal(finishReasonFromOpenAI(other), 'stop', String(other));
    }
  });
});

describe('prompt-token estimate', () => {
  it('is 2 + per message (4 + ceil(characters / 4))', () => {
    assert.equal(estimatePromptTokens([]), 2);
    assert.equal(estimatePromptTokens([{ content: '' }]), 6);
    assert.equal(estimatePromptTokens([{ content: 'Hello' }]), 2 + 4 + 2);
    assert.equal(estimatePromptTokens([{ content: 'x'.repeat(400) }, { content: 'abcd' }]), 2 + 104 + 5);
    // OpenAI request content counts as its flattened text.
    assert.equal(estimatePromptTokens([{ content: [{ text: 'Hel' }, { text: 'lo' }] }, { content: null }]), 2 + 6 + 4);
  });
});

describe('message content', () => {
  it('flattens strings, text parts, null and absent content', () => {
    assert.equal(contentText('plain'), 'plain');
    assert.equal(contentText([{ text: 'a' }, { text: 'b' }]), 'ab');
    assert.equal(contentText(null), '');
    assert.equal(contentText(undefined), '');
  });
});

describe('sampling defaults', () => {
  it('fills only what the request left out; 0 is a value, not an absence', () => {
    assert.deepEqual(withSamplingDefaults({}), { temperature: SAMPLING_DEFAULTS.temperature, topP: SAMPLING_DEFAULTS.topP });
    assert.deepEqual(withSamplingDefaults({ temperature: 0 }), { temperature: 0, topP: SAMPLING_DEFAULTS.topP });
    assert.deepEqual(withSamplingDefaults({ temperature: 1.5, topP: 1 }), { temperature: 1.5, topP: 1 });
  });
});

describe('context window', () => {
  it('the smaller of the endpoint and worker windows wins; 0 (unknown) does not take part', () => {
    assert.equal(effectiveContextWindow(2048, 4096), 2048);
    assert.equal(effectiveContextWindow(8192, 512), 512);
    assert.equal(effectiveContextWindow(2048, 0), 2048);
    assert.equal(effectiveContextWindow(0, 512), 512);
    assert.equal(effectiveContextWindow(0, 0), 0);
  });

  it('leaves at least one completion token, or refuses the prompt as context_length_exceeded', () => {
    assert.equal(completionRoom(512, 511), 1);
    for (const prompt of [512, 600]) {
      assert.throws(() => completionRoom(512, prompt), (err: unknown) => {
        assert.ok(err instanceof AppError);
        assert.equal(err.kind, 'invalid_request');
        assert.equal(err.code, 'context_length_exceeded');
        assert.equal(err.param, 'messages');
        return true;
      });
    }
  });

  it('clamps max_tokens to the room: omitted or too large becomes the room', () => {
    assert.equal(clampMaxTokens(undefined, 100), 100);
    assert.equal(clampMaxTokens(500, 100), 100);
    assert.equal(clampMaxTokens(7, 100), 7);
  });
});
