/**
 * The generation loop: one completion on a leased context sequence with `LlamaCompletion`.
 *
 * We avoid `LlamaChatSession` (it injects a default system prompt and keeps history) and
 * `LlamaChat` (it silently shifts/truncates history that does not fit): the rendered prompt
 * (prompt.ts) is evaluated exactly as counted, and a prompt that does not fit is a client error.
 *
 * Sampling: the whole vocabulary (no top_k) and no repeat penalty, as OpenAI samples;
 * temperature 0 is greedy. The inference service always passes temperature and top_p (lib/chat
 * sampling defaults); a direct caller that leaves one unset gets the neutral value 1, which does
 * not reshape the distribution. A request without a seed gets a random one (node-llama-cpp's
 * default is the current second, which would repeat outputs).
 *
 * Usage: promptTokens = tokens evaluated for the prompt (BOS included); completionTokens =
 * tokens the model sampled, including an end-of-generation token and the tokens of a stop
 * sequence, which are never emitted as text (llama-server and vLLM count them the same way).
 */
import { randomInt } from 'node:crypto';
import { LlamaCompletion, TokenBias, type LlamaCompletionResponse, type LlamaContextSequence, type LlamaGrammar, type LlamaModel } from 'node-llama-cpp';
import { clampMaxTokens, completionRoom } from '../../../../../lib/chat/context-window.js';
import { invalidRequest } from '../../../../../lib/errors/app-error.js';
import type { Token } from 'node-llama-cpp';
import type { EngineEvent, FinishReason, GenerateParams } from '../engine.js';
import { createEventQueue } from './event-queue.js';
import type { RenderedPrompt } from './prompt.js';

/** Per-request generation settings, already resolved. */
export interface Sampling {
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  stop: string[];
  /** OpenAI presence / frequency penalties (0 = off), over the last `penaltyWindow` tokens. */
  presencePenalty: number;
  frequencyPenalty: number;
  /** Token id → logit bias (OpenAI logit_bias). */
  logitBias: Record<number, number>;
  /** Output constraint (JSON, a schema, a tool call). */
  grammar?: LlamaGrammar | undefined;
}

/**
 * `logit_bias` is added to the token's logit, as OpenAI does (-100 bans it in practice). Token
 * ids beyond the vocabulary are refused.
 */
export function tokenBiasFor(model: LlamaModel, bias: Record<number, number>): TokenBias | undefined {
  const entries = Object.entries(bias);
  if (entries.length === 0) return undefined;
  const vocabulary = vocabularySize(model);
  const tokenBias = new TokenBias(model.tokenizer);
  for (const [key, value] of entries) {
    const token = Number(key);
    if (!Number.isInteger(token) || token < 0 || token >= vocabulary) {
      throw invalidRequest(`logit_bias: token id ${key} is not in the model's vocabulary (0 to ${vocabulary - 1}).`, { param: 'logit_bias' });
    }
    tokenBias.set(token as Token, { logit: value });
  }
  return tokenBias;
}

function vocabularySize(model: LlamaModel): number {
  const tokens: unknown = model.fileInfo.metadata.tokenizer?.ggml?.tokens;
  return Array.isArray(tokens) ? tokens.length : 0;
}

export function resolveSampling(params: GenerateParams, promptTokens: number, contextWindow: number): Sampling {
  const room = completionRoom(contextWindow, promptTokens, params.prompt === undefined ? 'messages' : 'prompt');
  if (params.maxTokens !== undefined && !(Number.isInteger(params.maxTokens) && params.maxTokens > 0)) {
    // LlamaCompletion treats 0 as "no limit", so never pass it through.
    throw invalidRequest('max_tokens must be a positive integer', { param: 'max_tokens' });
  }
  return {
    maxTokens: clampMaxTokens(params.maxTokens, room),
    temperature: params.temperature ?? 1,
    topP: params.topP ?? 1,
    seed: params.seed === undefined ? randomInt(0, 2 ** 32 - 1) : Math.trunc(params.seed) >>> 0,
    stop: params.stop.filter((s) => s !== ''),
    presencePenalty: params.presencePenalty ?? 0,
    frequencyPenalty: params.frequencyPenalty ?? 0,
    logitBias: params.logitBias ?? {},
  };
}

/**
 * Runs one completion on a leased sequence. Generation pushes into a queue that this generator
 * drains. `stop` aborting (the caller cancelled, the engine closes) ends generation with a
 * `cancelled` final event; leaving early (consumer `return()`, an error) aborts it too. Either
 * way this waits for generation to stop, so the sequence is idle when it goes back to the pool.
 * `runs` holds the in-flight generation while it runs, for close() to wait on.
 */
export async function* runCompletion(
  sequence: LlamaContextSequence,
  prompt: RenderedPrompt,
  sampling: Sampling,
  stop: AbortController,
  runs: Set<Promise<void>>,
  tokenBias?: TokenBias | undefined,
): AsyncGenerator<EngineEvent, void, undefined> {
  const penalized = sampling.presencePenalty !== 0 || sampling.frequencyPenalty !== 0;
  const events = createEventQueue<EngineEvent>();
  const completion = new LlamaCompletion({ contextSequence: sequence });
  const sampledBefore = sequence.tokenMeter.usedOutputTokens;
  let emittedTokens = 0;
  let unreportedTokens = 0;
  const run = completion
    .generateCompletionWithMeta(prompt.inputTokens, {
      maxTokens: sampling.maxTokens,
      temperature: sampling.temperature,
      topP: sampling.topP,
      topK: 0, // whole vocabulary, as OpenAI does; top_p is the only truncation
      seed: sampling.seed,
      // No multiplicative repeat penalty (OpenAI has none); OpenAI's additive presence and
      // frequency penalties over the tokens generated so far (llama.cpp's penalty sampler).
      repeatPenalty: penalized
        ? {
            penalty: 1,
            presencePenalty: sampling.presencePenalty,
            frequencyPenalty: sampling.frequencyPenalty,
            lastTokens: sampling.maxTokens,
            penalizeNewLine: true,
          }
        : false,
      ...(tokenBias !== undefined ? { tokenBias } : {}),
      ...(sampling.grammar !== undefined ? { grammar: sampling.grammar } : {}),
      customStopTriggers: [...prompt.templateStops, ...sampling.stop],
      signal: stop.signal,
      stopOnAbortSignal: true, // abort ends with stopReason "abort" instead of throwing
      disableContextShift: true,
      // LlamaCompletion would otherwise drop the oldest 10% of a long prompt to make room.
      contextShiftSize: 1,
      // onToken always runs right before onTextChunk for the same tokens.
      onToken: (tokens) => {
        unreportedTokens += tokens.length;
        emittedTokens += tokens.length;
      },
      onTextChunk: (text) => {
        if (text === '') return; // carry the tokens over to the next visible chunk
        events.push({ type: 'delta', text, tokenCount: unreportedTokens });
        unreportedTokens = 0;
      },
    })
    .then(
      (result) => {
        // The token meter counts logit evaluations: one per sampled token, EOS included.
        const sampled = sequence.tokenMeter.usedOutputTokens - sampledBefore;
        events.push({
          type: 'final',
          finishReason: toFinishReason(result.metadata.stopReason),
          usage: { promptTokens: prompt.promptTokens, completionTokens: Math.max(sampled, emittedTokens) },
        });
        events.end();
      },
      (err: unknown) => events.fail(err),
    );
  runs.add(run);
  try {
    yield* events;
  } finally {
    stop.abort();
    await run;
    runs.delete(run);
    completion.dispose({ disposeSequence: false });
  }
}

function toFinishReason(stopReason: LlamaCompletionResponse['metadata']['stopReason']): FinishReason {
  switch (stopReason) {
    case 'maxTokens':
      return 'length';
    case 'abort':
      return 'cancelled';
    case 'eogToken':
    case 'stopGenerationTrigger':
    case 'customStopTrigger':
      return 'stop';
  }
}
