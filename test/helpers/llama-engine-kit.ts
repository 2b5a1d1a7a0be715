/**
 * Shared pieces of the llama-cpp engine tests (services/inference/src/engines/llama-cpp/). They
 * run real inference against the tiny GGUF (engines/llama-cpp/tiny-gguf.ts), whose "successor"
 * weights make greedy output predictable, so every assertion is on exact text.
 *
 * The ChatML prompt always ends in "<|im_start|>assistant\n"; the successor of "\n" is "A", so
 * a greedy reply walks the ASCII table from "A" to "~" and then emits <|im_end|> (EOS):
 * 62 visible tokens + 1 EOS token.
 */
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { ChatMessage, EngineEvent, FinishReason, GenerateParams } from '../../services/inference/src/engines/engine.js';
import type { LlamaCppEngine } from '../../services/inference/src/engines/llama-cpp/llama-cpp-engine.js';

/** Greedy reply to any chat: "A" through "~" (then EOS). */
export const FULL_REPLY = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~';
export const HI: ChatMessage[] = [{ role: 'user', content: 'Hi' }];
/** BOS <|im_start|> "user\n" "Hi" <|im_end|> "\n" <|im_start|> "assistant\n" = 1+1+5+2+1+1+1+10. */
export const HI_PROMPT_TOKENS = 22;
/** The ChatML frame around one user message costs 20 tokens; each ASCII character is 1 token. */
export const USER_FRAME_TOKENS = 20;
export const CONTEXT_WINDOW = 512;
export const silent = pino({ level: 'silent' });

export interface Collected {
  text: string;
  deltas: Array<Extract<EngineEvent, { type: 'delta' }>>;
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
}

export function params(overrides: Partial<GenerateParams> = {}): GenerateParams {
  return { requestId: 'test', messages: HI, temperature: 0, stop: [], ...overrides };
}

export async function collect(
  engine: LlamaCppEngine,
  overrides: Partial<GenerateParams> = {},
  signal: AbortSignal = new AbortController().signal,
): Promise<Collected> {
  const deltas: Collected['deltas'] = [];
  const finals: Array<Extract<EngineEvent, { type: 'final' }>> = [];
  for await (const event of engine.generate(params(overrides), signal)) {
    if (event.type === 'delta') deltas.push(event);
    else finals.push(event);
  }
  assert.equal(finals.length, 1, 'exactly one final event');
  const final = finals[0]!;
  return {
    text: deltas.map((d) => d.text).join(''),
    deltas,
    finishReason: final.finishReason,
    promptTokens: final.usage.promptTokens,
    completionTokens: final.usage.completionTokens,
  };
}

export function userMessageOfTokens(promptTokens: number): ChatMessage[] {
  return [{ role: 'user', content: 'x'.repeat(promptTokens - USER_FRAME_TOKENS) }];
}
