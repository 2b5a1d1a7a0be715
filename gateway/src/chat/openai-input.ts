/** The OpenAI → worker mapping of a validated chat completion request. */
import { contentText } from '../../../lib/chat/messages.js';
import { roleToProto } from '../../../lib/chat/roles.js';
import { withSamplingDefaults } from '../../../lib/chat/sampling.js';
import type { ChatInput } from './core.js';
import type { ChatCompletionRequest } from '../openai/schema.js';

export function toChatInput(body: ChatCompletionRequest): ChatInput {
  return {
    messages: body.messages.map((m) => ({ role: roleToProto[m.role], content: contentText(m.content), name: m.name ?? '' })),
    // max_completion_tokens wins over the older max_tokens.
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
    ...withSamplingDefaults({ temperature: body.temperature ?? undefined, topP: body.top_p ?? undefined }),
    seed: body.seed ?? undefined,
    stop: body.stop === undefined || body.stop === null ? [] : Array.isArray(body.stop) ? body.stop : [body.stop],
  };
}
