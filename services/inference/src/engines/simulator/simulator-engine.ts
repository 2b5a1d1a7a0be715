/**
 * The simulator engine: deterministic text at a configured speed, with injectable faults.
 * A tool for load and fault tests and for demos without a model — never inference. It says so
 * in every response: the model is `simulator` and the fingerprint `fp_simulator`.
 *
 * A legacy completion (raw `prompt`) gets the same word stream. Embeddings are deterministic
 * pseudo-random unit vectors derived from a hash of each input (same text, same vector; no
 * meaning), {@link SIMULATOR_EMBEDDING_DIMENSIONS} long unless `dimensions` asks otherwise.
 */
import { createHash } from 'node:crypto';
import { delay } from 'abort-controller-x';
import { clampMaxTokens, completionRoom } from '../../../../../lib/chat/context-window.js';
import { estimatePromptTokens, estimateTextTokens, toolsAsText } from '../../../../../lib/chat/prompt-tokens.js';
import { AppError } from '../../../../../lib/errors/app-error.js';
import type { ChatMessage, EmbedParams, EmbedResult, Engine, EngineEvent, GenerateParams, OptionalParam, ToolSpec } from '../engine.js';
import { simulatedToolCall } from './tool-call.js';
import { normalize } from '../vector.js';
import { createPerformanceModel, NO_PERFORMANCE_MODEL, type SimulatorPerformance } from '../../../../../lib/simulator/performance-model.js';

export interface SimulatorOptions {
  tokensPerSecond: number;
  timeToFirstTokenMs: number;
  /** Tokens in a natural (finish_reason "stop") answer. */
  responseTokens: number;
  contextWindow: number;
  /** Fault: throw after this many tokens (0 = never). */
  failAfterTokens: number;
  /** Fault: stop producing after this many tokens and hang until cancelled (0 = never). */
  hangAfterTokens: number;
  /** Fault: exit the process after this many tokens (0 = never). */
  crashAfterTokens: number;
  /** Called on every token; tests use it to observe generation (e.g. cancel latency). */
  onToken?: ((requestId: string) => void) | undefined;
  /** Called when a generation stops because it was cancelled. */
  onCancel?: ((requestId: string) => void) | undefined;
  /** Speed factor, degradation and prefix-cache model (lib/simulator/performance-model.ts); default: none. */
  performance?: SimulatorPerformance | undefined;
}

export const SIMULATOR_MODEL = 'simulator';
export const SIMULATOR_EMBEDDING_DIMENSIONS = 64;

/** Its words do not come from a distribution, so nothing that reshapes one can be honoured. */
const SIMULATOR_UNSUPPORTED: ReadonlySet<OptionalParam> = new Set([
  'response_format',
  'presence_penalty',
  'frequency_penalty',
  'logit_bias',
  'logprobs',
  'top_logprobs',
  'reasoning_effort',
]);

const WORDS = [
  'The', 'simulator', 'streams', 'deterministic', 'tokens', 'so', 'tests', 'and', 'benchmarks',
  'can', 'measure', 'the', 'platform', 'without', 'a', 'model', 'this', 'is', 'not', 'inference',
];

export function createSimulatorEngine(options: SimulatorOptions): Engine {
  const performance = createPerformanceModel(options.performance ?? NO_PERFORMANCE_MODEL);
  return {
    async start() {},
    ready: () => true,
    unsupported: SIMULATOR_UNSUPPORTED,
    info: () => ({
      engine: 'simulator',
      model: SIMULATOR_MODEL,
      fingerprint: 'fp_simulator',
      contextWindow: options.contextWindow,
      backend: `simulator ${options.tokensPerSecond} tok/s${(options.performance?.speedFactor ?? 1) === 1 ? '' : ` × ${options.performance?.speedFactor}`}`,
    }),
    // No tokenizer: prompts are counted with the shared estimate (lib/chat/prompt-tokens.ts).
    countPromptTokens: async (messages, tools = [], prompt) => countPrompt(messages, tools, prompt),
    async *generate(params: GenerateParams, signal: AbortSignal): AsyncGenerator<EngineEvent> {
      const promptTokens = countPrompt(params.messages, params.tools ?? [], params.prompt);
      const room = completionRoom(options.contextWindow, promptTokens, params.prompt === undefined ? 'messages' : 'prompt');
      const maxTokens = clampMaxTokens(params.maxTokens, room);
      const limit = Math.min(maxTokens, options.responseTokens);
      const start = seedFrom(params);
      const { firstTokenMs, interTokenMs } = performance.begin(params.messages, promptTokens, options);
      let text = '';
      let produced = 0;
      try {
        if (firstTokenMs > 0) await delay(signal, firstTokenMs);
        const call = simulatedToolCall(params);
        if (call !== undefined) {
          // The call's head, then its arguments in two fragments, as streaming servers send them.
          const half = Math.ceil(call.arguments.length / 2);
          yield { type: 'delta', text: '', tokenCount: 1, toolCalls: [{ index: 0, id: call.id, name: call.name, arguments: '' }] };
          yield { type: 'delta', text: '', tokenCount: 1, toolCalls: [{ index: 0, arguments: call.arguments.slice(0, half) }] };
          yield { type: 'delta', text: '', tokenCount: 1, toolCalls: [{ index: 0, arguments: call.arguments.slice(half) }] };
          yield { type: 'final', finishReason: 'tool_calls', usage: { promptTokens, completionTokens: 3 } };
          return;
        }
        while (produced < limit) {
          if (produced > 0 && interTokenMs > 0) await delay(signal, interTokenMs);
          if (options.crashAfterTokens > 0 && produced >= options.crashAfterTokens) process.exit(70);
          if (options.failAfterTokens > 0 && produced >= options.failAfterTokens) {
            throw new AppError('internal', 'simulated engine failure');
          }
          if (options.hangAfterTokens > 0 && produced >= options.hangAfterTokens) {
            await delay(signal, 2 ** 31 - 1);
          }
          const piece = (produced === 0 ? '' : ' ') + WORDS[(start + produced) % WORDS.length];
          const candidate = text + piece;
          const cut = firstStop(candidate, params.stop);
          if (cut !== undefined) {
            const tail = candidate.slice(text.length, cut);
            if (tail) yield { type: 'delta', text: tail, tokenCount: 1 };
            produced += 1;
            yield { type: 'final', finishReason: 'stop', usage: { promptTokens, completionTokens: produced } };
            return;
          }
          text = candidate;
          produced += 1;
          options.onToken?.(params.requestId);
          yield { type: 'delta', text: piece, tokenCount: 1 };
        }
        const finishReason = produced >= options.responseTokens && produced < maxTokens ? 'stop' : 'length';
        yield { type: 'final', finishReason, usage: { promptTokens, completionTokens: produced } };
      } catch (err) {
        if (signal.aborted) {
          options.onCancel?.(params.requestId);
          yield { type: 'final', finishReason: 'cancelled', usage: { promptTokens, completionTokens: produced } };
          return;
        }
        throw err;
      }
    },
    embed: async (params) => simulatedEmbeddings(params),
    async close() {},
  };
}

function countPrompt(messages: ChatMessage[], tools: readonly ToolSpec[], prompt: string | undefined): number {
  return prompt === undefined ? estimatePromptTokens([...messages, ...toolsAsText(tools)]) : estimateTextTokens(prompt);
}

function simulatedEmbeddings(params: EmbedParams): EmbedResult {
  const dimensions = params.dimensions ?? SIMULATOR_EMBEDDING_DIMENSIONS;
  const embeddings = params.inputs.map((input) => {
    const values: number[] = [];
    for (let block = 0; values.length < dimensions; block++) {
      const digest = createHash('sha256').update(`${block}\n${input}`).digest();
      for (let i = 0; i + 1 < digest.length && values.length < dimensions; i += 2) values.push(digest.readUInt16BE(i) / 32768 - 1);
    }
    return normalize(values);
  });
  return { embeddings, promptTokens: params.inputs.reduce((n, input) => n + estimateTextTokens(input), 0) };
}

function seedFrom(params: GenerateParams): number {
  const basis = params.seed !== undefined ? String(params.seed) : (params.prompt ?? params.messages.map((m) => m.content).join('\n'));
  return createHash('sha256').update(basis).digest().readUInt16BE(0);
}

function firstStop(text: string, stops: string[]): number | undefined {
  let best: number | undefined;
  for (const s of stops) {
    const at = s ? text.indexOf(s) : -1;
    if (at >= 0 && (best === undefined || at < best)) best = at;
  }
  return best;
}
