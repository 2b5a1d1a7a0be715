/**
 * The gRPC parse: a CreateChatCompletionRequest checked against the same limits as the HTTP API
 * (lib/errors INVALID_ARGUMENT naming the field at fault) and mapped to the transport-neutral
 * ChatInput.
 */
import { Role as WorkerRole } from '../../../gen/xerotier/inference/v1/inference_service.js';
import { Role, type CreateChatCompletionRequest, type CreateEmbeddingRequest } from '../../../gen/xerotier/gateway/v1/chat_service.js';
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
    return { role, content: m.content, name: m.name };
  });
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
