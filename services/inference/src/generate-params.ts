/**
 * A GenerateRequest (proto) as the engine's GenerateParams, with the worker's refusals: an
 * optional parameter the serving engine cannot honour (Engine.unsupported) is refused with
 * INVALID_ARGUMENT naming it (the gateway answers 400 with that `param`), never dropped. The
 * sampling defaults (lib/chat/sampling.ts) are applied here, so every engine samples the same way
 * whoever called.
 */
import { randomUUID } from 'node:crypto';
import type { ChatMessage as ProtoChatMessage, GenerateRequest } from '../../../gen/xerotier/inference/v1/inference_service.js';
import { invalidRequest } from '../../../lib/errors/app-error.js';
import { roleFromProto } from '../../../lib/chat/roles.js';
import { withSamplingDefaults } from '../../../lib/chat/sampling.js';
import { responseFormatFromProto, toolChoiceFromProto, toolFromProto } from '../../../lib/chat/tools.js';
import type { ChatMessage, Engine, GenerateParams, OptionalParam } from './engines/engine.js';

export function toEngineMessages(messages: ProtoChatMessage[]): ChatMessage[] {
  if (messages.length === 0) throw invalidRequest('messages must not be empty', { param: 'messages' });
  return messages.map((m, i) => {
    const role = roleFromProto(m.role);
    if (!role) throw invalidRequest(`messages[${i}].role is not supported`, { param: `messages[${i}].role` });
    return {
      role,
      content: m.content,
      ...(m.name ? { name: m.name } : {}),
      ...(m.toolCalls.length > 0 ? { toolCalls: m.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments })) } : {}),
      ...(m.toolCallId ? { toolCallId: m.toolCallId } : {}),
    };
  });
}

export function toGenerateParams(request: GenerateRequest, engine: Pick<Engine, 'unsupported' | 'info'>): GenerateParams {
  if (request.stop.length > 4) throw invalidRequest('at most 4 stop sequences', { param: 'stop' });
  // A legacy completion's raw prompt replaces the conversation.
  const prompt = request.prompt;
  if (prompt !== undefined && request.messages.length > 0) {
    throw invalidRequest('a generation has either messages or a prompt, not both', { param: 'prompt' });
  }
  const set = (param: OptionalParam, present: boolean): void => {
    if (present && engine.unsupported.has(param)) {
      throw invalidRequest(`'${param}' is not supported by the ${engine.info().engine} engine serving this endpoint.`, {
        code: 'unsupported_parameter',
        param,
      });
    }
  };
  const tools = parseJson('tools', () => request.tools.map(toolFromProto));
  const responseFormat = parseJson('response_format', () => responseFormatFromProto(request.responseFormat));
  const toolChoice = toolChoiceFromProto(request.toolChoice, request.toolChoiceName, tools.length > 0);
  if (toolChoice.mode === 'named' && !tools.some((t) => t.name === toolChoice.name)) {
    throw invalidRequest(`tool_choice names '${toolChoice.name}', which is not in 'tools'.`, { param: 'tool_choice' });
  }
  if ((toolChoice.mode === 'required' || toolChoice.mode === 'named') && tools.length === 0) {
    throw invalidRequest("tool_choice requires 'tools'.", { param: 'tool_choice' });
  }
  const logitBias = Object.keys(request.logitBias).length > 0 ? request.logitBias : undefined;
  set('tools', tools.length > 0);
  set('response_format', responseFormat !== undefined);
  set('presence_penalty', request.presencePenalty !== undefined && request.presencePenalty !== 0);
  set('frequency_penalty', request.frequencyPenalty !== undefined && request.frequencyPenalty !== 0);
  set('logit_bias', logitBias !== undefined);
  set('logprobs', request.logprobs);
  set('top_logprobs', request.topLogprobs !== undefined);
  set('reasoning_effort', request.reasoningEffort !== '');
  return {
    requestId: request.requestId || randomUUID(),
    messages: prompt === undefined ? toEngineMessages(request.messages) : [],
    ...(prompt === undefined ? {} : { prompt }),
    maxTokens: request.maxTokens,
    ...withSamplingDefaults({ temperature: request.temperature, topP: request.topP }),
    seed: request.seed,
    stop: request.stop,
    ...(tools.length > 0 ? { tools, toolChoice } : {}),
    ...(request.parallelToolCalls !== undefined ? { parallelToolCalls: request.parallelToolCalls } : {}),
    ...(responseFormat !== undefined ? { responseFormat } : {}),
    ...(request.presencePenalty !== undefined ? { presencePenalty: request.presencePenalty } : {}),
    ...(request.frequencyPenalty !== undefined ? { frequencyPenalty: request.frequencyPenalty } : {}),
    ...(logitBias !== undefined ? { logitBias } : {}),
    ...(request.reasoningEffort !== '' ? { reasoningEffort: request.reasoningEffort } : {}),
    ...(request.user !== '' ? { user: request.user } : {}),
    ...(Object.keys(request.metadata).length > 0 ? { metadata: request.metadata } : {}),
  };
}

function parseJson<T>(param: string, read: () => T): T {
  try {
    return read();
  } catch {
    throw invalidRequest(`'${param}' carries a schema that is not valid JSON.`, { param });
  }
}
