/** The OpenAI → worker mapping of a validated chat completion request. */
import { Role } from '../../../gen/xerotier/inference/v1/inference_service.js';
import type { ChatInput } from './core.js';
import { contentText, DEFAULT_TEMPERATURE, DEFAULT_TOP_P, type ChatCompletionRequest } from '../openai/schema.js';

const roles: Record<ChatCompletionRequest['messages'][number]['role'], Role> = {
  system: Role.ROLE_SYSTEM,
  developer: Role.ROLE_DEVELOPER,
  user: Role.ROLE_USER,
  assistant: Role.ROLE_ASSISTANT,
  tool: Role.ROLE_TOOL,
};

export function toChatInput(body: ChatCompletionRequest): ChatInput {
  return {
    messages: body.messages.map((m) => ({ role: roles[m.role], content: contentText(m.content), name: m.name ?? '' })),
    // max_completion_tokens wins over the older max_tokens.
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
    temperature: body.temperature ?? DEFAULT_TEMPERATURE,
    topP: body.top_p ?? DEFAULT_TOP_P,
    seed: body.seed ?? undefined,
    stop: body.stop === undefined || body.stop === null ? [] : Array.isArray(body.stop) ? body.stop : [body.stop],
  };
}
