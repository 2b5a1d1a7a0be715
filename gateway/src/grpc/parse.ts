/**
 * The gRPC parse: a CreateChatCompletionRequest checked against the same limits as the HTTP API
 * (lib/errors INVALID_ARGUMENT naming the field at fault) and mapped to the transport-neutral
 * ChatInput.
 */
import {
  ResponseFormatType as WorkerResponseFormatType,
  Role as WorkerRole,
  ToolChoiceMode as WorkerToolChoiceMode,
} from '../../../gen/xerotier/inference/v1/inference_service.js';
import {
  ResponseFormatType,
  Role,
  ToolChoiceMode,
  type CreateChatCompletionRequest,
  type CreateEmbeddingRequest,
} from '../../../gen/xerotier/gateway/v1/chat_service.js';
import { invalidRequest } from '../../../lib/errors/app-error.js';
import type { ChatInput } from '../chat/core.js';
import type { EmbedInput } from '../embeddings/core.js';
import { MAX_EMBEDDING_DIMENSIONS, MAX_EMBEDDING_INPUTS } from '../openai/embeddings-schema.js';
import { withSamplingDefaults } from '../../../lib/chat/sampling.js';

const roles: Partial<Record<Role, WorkerRole>> = {
  [Role.ROLE_SYSTEM]: WorkerRole.ROLE_SYSTEM,
  [Role.ROLE_DEVELOPER]: WorkerRole.ROLE_DEVELOPER,
  [Role.ROLE_USER]: WorkerRole.ROLE_USER,
  [Role.ROLE_ASSISTANT]: WorkerRole.ROLE_ASSISTANT,
  [Role.ROLE_TOOL]: WorkerRole.ROLE_TOOL,
};

const toolChoices: Partial<Record<ToolChoiceMode, WorkerToolChoiceMode>> = {
  [ToolChoiceMode.TOOL_CHOICE_MODE_UNSPECIFIED]: WorkerToolChoiceMode.TOOL_CHOICE_MODE_UNSPECIFIED,
  [ToolChoiceMode.TOOL_CHOICE_MODE_NONE]: WorkerToolChoiceMode.TOOL_CHOICE_MODE_NONE,
  [ToolChoiceMode.TOOL_CHOICE_MODE_AUTO]: WorkerToolChoiceMode.TOOL_CHOICE_MODE_AUTO,
  [ToolChoiceMode.TOOL_CHOICE_MODE_REQUIRED]: WorkerToolChoiceMode.TOOL_CHOICE_MODE_REQUIRED,
  [ToolChoiceMode.TOOL_CHOICE_MODE_NAMED]: WorkerToolChoiceMode.TOOL_CHOICE_MODE_NAMED,
};

const formats: Partial<Record<ResponseFormatType, WorkerResponseFormatType>> = {
  [ResponseFormatType.RESPONSE_FORMAT_TYPE_UNSPECIFIED]: WorkerResponseFormatType.RESPONSE_FORMAT_TYPE_UNSPECIFIED,
  [ResponseFormatType.RESPONSE_FORMAT_TYPE_TEXT]: WorkerResponseFormatType.RESPONSE_FORMAT_TYPE_TEXT,
  [ResponseFormatType.RESPONSE_FORMAT_TYPE_JSON_OBJECT]: WorkerResponseFormatType.RESPONSE_FORMAT_TYPE_JSON_OBJECT,
  [ResponseFormatType.RESPONSE_FORMAT_TYPE_JSON_SCHEMA]: WorkerResponseFormatType.RESPONSE_FORMAT_TYPE_JSON_SCHEMA,
};

const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const MAX_MESSAGES = 2048;
const MAX_STOP = 4;
const MAX_NAME = 256;

function refuse(param: string, message: string): never {
  throw invalidRequest(`Invalid '${param}': ${message}.`, { code: 'invalid_request', param });
}

export function parseChatRequest(request: CreateChatCompletionRequest): ChatInput {
  if (request.messages.length === 0) refuse('messages', 'must contain at least one message');
  if (request.messages.length > MAX_MESSAGES) refuse('messages', `at most ${MAX_MESSAGES} messages`);
  const messages = request.messages.map((m, i) => {
    const role = roles[m.role];
    if (role === undefined) refuse(`messages[${i}].role`, 'must be one of system, developer, user, assistant, tool');
    if (m.name.length > MAX_NAME) refuse(`messages[${i}].name`, `at most ${MAX_NAME} characters`);
    return {
      role,
      content: m.content,
      name: m.name,
      toolCalls: m.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments })),
      toolCallId: m.toolCallId,
    };
  });
  request.tools.forEach((t, i) => {
    if (!FUNCTION_NAME.test(t.name)) refuse(`tools[${i}].name`, 'must be 1 to 64 letters, digits, underscores or dashes');
  });
  const toolChoice = toolChoices[request.toolChoice];
  if (toolChoice === undefined) refuse('tool_choice', 'unknown mode');
  const format = request.responseFormat ? formats[request.responseFormat.type] : undefined;
  if (request.responseFormat && format === undefined) refuse('response_format', 'unknown type');
  for (const [param, value] of [['presence_penalty', request.presencePenalty], ['frequency_penalty', request.frequencyPenalty]] as const) {
    if (value !== undefined && !(value >= -2 && value <= 2)) refuse(param, 'must be between -2 and 2');
  }
  if (Object.values(request.logitBias).some((b) => !(b >= -100 && b <= 100))) refuse('logit_bias', 'biases must be between -100 and 100');
  if (Object.keys(request.metadata).length > 16) refuse('metadata', 'at most 16 keys');
  const { maxCompletionTokens, temperature, topP, seed } = request;
  if (maxCompletionTokens !== undefined && maxCompletionTokens < 1) refuse('max_completion_tokens', 'must be at least 1');
  if (temperature !== undefined && !(temperature >= 0 && temperature <= 2)) refuse('temperature', 'must be between 0 and 2');
  if (topP !== undefined && !(topP >= 0 && topP <= 1)) refuse('top_p', 'must be between 0 and 1');
  if (seed !== undefined && !Number.isSafeInteger(seed)) refuse('seed', 'is out of range');
  if (request.stop.length > MAX_STOP) refuse('stop', `at most ${MAX_STOP} stop sequences`);
  if (request.stop.some((s) => s.length === 0)) refuse('stop', 'stop sequences must not be empty');
  if (request.user.length > MAX_NAME) refuse('user', `at most ${MAX_NAME} characters`);
  return {
    messages,
    maxTokens: maxCompletionTokens,
    ...withSamplingDefaults({ temperature, topP }),
    seed,
    stop: request.stop,
    features: {
      tools: request.tools,
      toolChoice,
      toolChoiceName: request.toolChoiceName,
      parallelToolCalls: request.parallelToolCalls,
      responseFormat: request.responseFormat && format !== undefined ? { ...request.responseFormat, type: format } : undefined,
      presencePenalty: request.presencePenalty,
      frequencyPenalty: request.frequencyPenalty,
      logitBias: request.logitBias,
      logprobs: false,
      topLogprobs: undefined,
      reasoningEffort: request.reasoningEffort,
      user: request.user,
      metadata: request.metadata,
    },
  };
}

export function parseEmbeddingRequest(request: CreateEmbeddingRequest): EmbedInput {
  if (request.inputs.length === 0) refuse('inputs', 'must contain at least one text');
  if (request.inputs.length > MAX_EMBEDDING_INPUTS) refuse('inputs', `at most ${MAX_EMBEDDING_INPUTS} texts`);
  if (request.inputs.some((text) => text.length === 0)) refuse('inputs', 'texts must not be empty');
  const { dimensions } = request;
  if (dimensions !== undefined && (dimensions < 1 || dimensions > MAX_EMBEDDING_DIMENSIONS)) {
    refuse('dimensions', `must be between 1 and ${MAX_EMBEDDING_DIMENSIONS}`);
  }
  if (request.user.length > MAX_NAME) refuse('user', `at most ${MAX_NAME} characters`);
  return { inputs: request.inputs, dimensions };
}
