/** The OpenAI → worker mapping of a validated chat completion request. */
import { contentText } from '../../../lib/chat/messages.js';
import { roleToProto } from '../../../lib/chat/roles.js';
import { withSamplingDefaults } from '../../../lib/chat/sampling.js';
import { responseFormatToProto, toolChoiceToProto, toolToProto, type ResponseFormat, type ToolChoice } from '../../../lib/chat/tools.js';
import type { ChatFeatures, ChatInput } from './core.js';
import type { ChatCompletionRequest } from '../openai/schema.js';

export function toChatInput(body: ChatCompletionRequest): ChatInput {
  return {
    messages: body.messages.map((m) => ({
      role: roleToProto[m.role],
      content: contentText(m.content),
      name: m.name ?? '',
      toolCalls: (m.tool_calls ?? []).map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments })),
      toolCallId: m.tool_call_id ?? '',
    })),
    // max_completion_tokens wins over the older max_tokens.
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
    ...withSamplingDefaults({ temperature: body.temperature ?? undefined, topP: body.top_p ?? undefined }),
    seed: body.seed ?? undefined,
    stop: body.stop === undefined || body.stop === null ? [] : Array.isArray(body.stop) ? body.stop : [body.stop],
    features: toFeatures(body),
  };
}

function toFeatures(body: ChatCompletionRequest): ChatFeatures {
  const tools = (body.tools ?? []).map((t) =>
    toolToProto({
      name: t.function.name,
      description: t.function.description ?? '',
      parameters: t.function.parameters ?? { type: 'object', properties: {} },
      strict: t.function.strict === true,
    }),
  );
  return {
    tools,
    ...toolChoiceToProto(toolChoice(body.tool_choice)),
    parallelToolCalls: body.parallel_tool_calls ?? undefined,
    responseFormat: responseFormatToProto(responseFormat(body.response_format)),
    presencePenalty: body.presence_penalty ?? undefined,
    frequencyPenalty: body.frequency_penalty ?? undefined,
    logitBias: Object.fromEntries(Object.entries(body.logit_bias ?? {}).map(([k, v]) => [Number(k), v])),
    logprobs: body.logprobs === true,
    topLogprobs: body.top_logprobs ?? undefined,
    reasoningEffort: body.reasoning_effort ?? '',
    // safety_identifier is OpenAI's newer name for the end-user id.
    user: body.user ?? body.safety_identifier ?? '',
    metadata: body.metadata ?? {},
  };
}

function toolChoice(choice: ChatCompletionRequest['tool_choice']): ToolChoice | undefined {
  if (choice === undefined || choice === null) return undefined;
  if (typeof choice === 'string') return { mode: choice };
  return { mode: 'named', name: choice.function.name };
}

function responseFormat(format: ChatCompletionRequest['response_format']): ResponseFormat | undefined {
  if (format === undefined || format === null) return undefined;
  if (format.type !== 'json_schema') return format;
  return {
    type: 'json_schema',
    name: format.json_schema.name,
    schema: format.json_schema.schema ?? {},
    strict: format.json_schema.strict === true,
  };
}
