/** The OpenAI → worker mapping of a validated legacy completions request: a generation with a raw prompt. */
import { withSamplingDefaults } from '../../../lib/chat/sampling.js';
import { noFeatures, type ChatInput } from '../chat/core.js';
import { DEFAULT_COMPLETION_MAX_TOKENS, type CompletionsRequest } from '../openai/completions-schema.js';

export function promptText(body: CompletionsRequest): string {
  return typeof body.prompt === 'string' ? body.prompt : body.prompt[0];
}

export function toCompletionInput(body: CompletionsRequest): ChatInput {
  return {
    messages: [],
    prompt: promptText(body),
    maxTokens: body.max_tokens ?? DEFAULT_COMPLETION_MAX_TOKENS,
    ...withSamplingDefaults({ temperature: body.temperature ?? undefined, topP: body.top_p ?? undefined }),
    seed: body.seed ?? undefined,
    stop: body.stop === undefined || body.stop === null ? [] : Array.isArray(body.stop) ? body.stop : [body.stop],
    features: { ...noFeatures(), user: body.user ?? '' },
  };
}
