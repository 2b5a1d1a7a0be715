/**
 * The one prompt-token estimate, for every place that must count a prompt without the model's
 * tokenizer: the gateway's quota reservation and max_tokens clamp, the simulator (which has no
 * tokenizer), and the openai engine when its upstream reports no usage.
 *
 *   tokens = 2 + Σ over messages (4 + ceil(characters / 4))
 *
 * - characters / 4: the usual average for English text with BPE vocabularies (GPT, Llama and
 *   SmolLM tokenizers all land near 4 characters per token), rounded up per message;
 * - 4 per message: the chat template's frame around each turn (a turn-start marker, the role,
 *   a newline and an end-of-turn marker, as in ChatML);
 * - 2 once: the assistant header that primes the reply.
 *
 * It is an estimate: an engine with a tokenizer (llama.cpp) counts exactly, and an upstream's
 * reported usage always wins over it.
 */
import { contentText, type OpenAIContent } from './messages.js';

export const PER_MESSAGE_TOKENS = 4;
export const REPLY_PRIMING_TOKENS = 2;
export const CHARACTERS_PER_TOKEN = 4;

/** The estimate of a raw text prompt (a legacy completion, an embedding input): no template frame. */
export function estimateTextTokens(text: string): number {
  return Math.ceil(text.length / CHARACTERS_PER_TOKEN);
}

/** Takes engine messages (string content) as well as OpenAI request messages (text parts, null). */
export function estimatePromptTokens(messages: ReadonlyArray<{ content: OpenAIContent }>): number {
  return messages.reduce(
    (n, m) => n + PER_MESSAGE_TOKENS + Math.ceil(contentText(m.content).length / CHARACTERS_PER_TOKEN),
    REPLY_PRIMING_TOKENS,
  );
}

/** Offered tools count as one more message holding their JSON (names, descriptions, schemas). */
export function toolsAsText(tools: ReadonlyArray<unknown>): Array<{ content: string }> {
  return tools.length === 0 ? [] : [{ content: JSON.stringify(tools) }];
}
