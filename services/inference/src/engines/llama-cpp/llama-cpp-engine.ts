/**
 * Real in-process inference with node-llama-cpp (llama.cpp): one model, one context, `parallel`
 * sequences handed out by a pool. The pieces, one file each in this folder:
 *
 * - model-file.ts: model path or `hf:` URI → file on disk, downloads bounded by a stall timer;
 * - backend.ts: the llama.cpp binaries for the requested GPU, its logs, the hardware in use;
 * - prompt.ts: messages → the model's chat template → tokens (what we count is what we run), or a
 *   legacy completion's raw prompt → tokens;
 * - sequence-pool.ts: the context's fixed sequences, one generation each;
 * - generation.ts: sampling and the generation loop;
 * - embedding.ts: embeddings on a second, embedding-only context created on first use;
 * - model-info.ts: model name, fingerprint and context window reported to clients;
 * - tiny-gguf.ts: the generated tiny model used by tests and as the offline fallback.
 *
 * Cancellation has one path: each generation has one stop controller, aborted by the caller's
 * signal or by close(); llama.cpp then stops at the next token and the final event says
 * `cancelled`. A caller that aborts while waiting for a sequence gets the same final event.
 */
import type { Logger } from 'pino';
import {
  resolveChatWrapper,
  type BuiltInChatWrapperType,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
} from 'node-llama-cpp';
import { unavailable } from '../../../../../lib/errors/app-error.js';
import type { ChatMessage, Engine, EngineEvent, EngineInfo, GenerateParams, OptionalParam, ToolSpec } from '../engine.js';
import { detectHardware, loadLlama, noHardware, type LlamaGpuOption, type LlamaHardware } from './backend.js';
import { randomBytes } from 'node:crypto';
import { resolveSampling, runCompletion, tokenBiasFor } from './generation.js';
import { planOutput } from './output-plan.js';
import { createToolCallOutput } from './tool-call-output.js';
import { defaultContextSize, describeLoadedModel, pendingInfo } from './model-info.js';
import { resolveModel, type ModelSource } from './model-file.js';
import { createEmbedder, type Embedder } from './embedding.js';
import { renderPrompt, renderRawPrompt, type RenderedPrompt } from './prompt.js';
import { createSequencePool, type SequencePool } from './sequence-pool.js';


export interface LlamaCppEngineOptions extends ModelSource {
  /** 'auto' tries CUDA, Vulkan, Metal, then CPU. An explicit GPU that cannot load fails start(). */
  gpu?: LlamaGpuOption | undefined;
  /** llama.cpp compute threads; default max(1, cpuMathCores - 1) so Node keeps a core. */
  threads?: number | undefined;
  /** Sequences in the one context = requests generated at once. Default 2. */
  parallel?: number | undefined;
  /** Context window per sequence; default min(model training context, 4096). */
  contextSize?: number | undefined;
  /** Model name reported to clients; default GGUF `general.name`, then the file name. */
  modelName?: string | undefined;
}

export interface LlamaCppEngineDeps {
  logger: Logger;
}

export type LlamaCppEngine = Engine & { hardware(): LlamaHardware };

const DEFAULT_PARALLEL = 2;

/** Everything that exists only while the model is loaded. */
interface Loaded {
  llama: Llama;
  model: LlamaModel;
  context: LlamaContext;
  chatWrapper: BuiltInChatWrapperType;
  pool: SequencePool<LlamaContextSequence>;
  info: EngineInfo;
  hardware: LlamaHardware;
  embedder: Embedder;
}

export function createLlamaCppEngine(opts: LlamaCppEngineOptions, deps: LlamaCppEngineDeps): LlamaCppEngine {
  const logger = deps.logger.child({ engine: 'llama-cpp' });
  const parallel = positiveInteger(opts.parallel ?? DEFAULT_PARALLEL, 'parallel');
  /** Aborted by close(): stops every generation in flight. */
  const closing = new AbortController();
  /** In-flight generations, so close() can wait for them before disposing the context. */
  const runs = new Set<Promise<void>>();
  let loaded: Loaded | undefined;
  let starting: Promise<void> | undefined;
  let closed = false;

  async function load(signal: AbortSignal | undefined): Promise<void> {
    const disposers: Array<() => Promise<void>> = [];
    try {
      const modelFile = await resolveModel(opts, logger, signal);
      const llama = await loadLlama(opts.gpu ?? 'auto', logger);
      disposers.push(() => llama.dispose());
      const model = await llama.loadModel({
        modelPath: modelFile,
        gpuLayers: llama.gpu === false ? 0 : 'auto',
        ...(signal === undefined ? {} : { loadSignal: signal }),
      });
      disposers.push(() => model.dispose());
      const threads = positiveInteger(opts.threads ?? Math.max(1, llama.cpuMathCores - 1), 'threads');
      const context = await model.createContext({
        contextSize: positiveInteger(opts.contextSize ?? defaultContextSize(model), 'contextSize'),
        sequences: parallel,
        threads,
        ...(signal === undefined ? {} : { createSignal: signal }),
      });
      disposers.push(() => context.dispose());
      const sequences = Array.from({ length: parallel }, () => context.getSequence());
      const hardware = await detectHardware(llama);
      const info = await describeLoadedModel({ modelName: opts.modelName, modelFile, model, context, llama, hardware, threads });
      const chatWrapper = resolveChatWrapper(model);
      if (closed) throw unavailable('llama-cpp engine was closed while starting');
      const embedder = createEmbedder(model, { contextSize: context.contextSize, threads });
      loaded = { llama, model, context, chatWrapper, pool: createSequencePool(sequences), info, hardware, embedder };
      const { engine: _engine, ...described } = info; // the child logger already says engine
      logger.info(
        { ...described, chatWrapper: chatWrapper.wrapperName, threads, parallel, ...hardware },
        'llama-cpp engine ready',
      );
    } catch (err) {
      // Dispose in reverse order of creation: context, model, llama.
      for (const dispose of disposers.reverse()) await dispose().catch(() => undefined);
      throw err;
    }
  }

  function requireLoaded(): Loaded {
    if (loaded === undefined || closed) throw unavailable('llama-cpp engine is not ready');
    return loaded;
  }

  async function* generate(params: GenerateParams, signal: AbortSignal): AsyncGenerator<EngineEvent, void, undefined> {
    const state = requireLoaded();
    const plan = await planOutput(state.llama, params);
    const prompt = render(state, params.messages, plan.tools, params.prompt);
    const sampling = { ...resolveSampling(params, prompt.promptTokens, state.context.contextSize), grammar: plan.grammar };
    const tokenBias = tokenBiasFor(state.model, sampling.logitBias);
    let sequence: LlamaContextSequence;
    try {
      sequence = await state.pool.acquire(signal); // rejects at once on an aborted signal
    } catch (err) {
      if (!signal.aborted) throw err;
      yield { type: 'final', finishReason: 'cancelled', usage: { promptTokens: prompt.promptTokens, completionTokens: 0 } };
      return;
    }
    const stop = new AbortController();
    const unlink = abortOnAny(stop, [signal, closing.signal]);
    try {
      const events = runCompletion(sequence, prompt, sampling, stop, runs, tokenBias);
      yield* plan.mode === 'text' ? events : asToolCalls(events, plan.mode);
    } finally {
      unlink();
      state.pool.release(sequence);
    }
  }

  async function close(): Promise<void> {
    closed = true;
    await starting?.catch(() => undefined);
    const state = loaded;
    loaded = undefined;
    if (state === undefined) return;
    state.pool.close(unavailable('llama-cpp engine is closed'));
    closing.abort(unavailable('llama-cpp engine is closing'));
    await Promise.allSettled([...runs]);
    await state.embedder.close();
    // Order matters: sequences live in the context, the context in the model, all in llama.
    await state.context.dispose();
    await state.model.dispose();
    await state.llama.dispose();
    logger.info('llama-cpp engine closed');
  }

  return {
    start(signal?: AbortSignal): Promise<void> {
      if (closed) return Promise.reject(unavailable('llama-cpp engine is closed'));
      starting ??= load(signal).catch((err: unknown) => {
        starting = undefined; // allow a retry after a failed start
        throw err;
      });
      return starting;
    },
    info: () => loaded?.info ?? pendingInfo(opts),
    // Token probabilities are not read out of node-llama-cpp's completion API (yet); reasoning
    // effort is a hosted-model setting with no llama.cpp counterpart.
    unsupported: new Set<OptionalParam>(['logprobs', 'top_logprobs', 'reasoning_effort']),
    ready: () => loaded !== undefined && !closed,
    countPromptTokens: async (messages, tools, prompt) => render(requireLoaded(), messages, tools, prompt).promptTokens,
    generate,
    embed: (params, signal) => requireLoaded().embedder.embed(params, signal),
    close,
    hardware: () => loaded?.hardware ?? noHardware(),
  };
}

/** A tool-call generation's text as tool-call deltas (tool-call-output.ts); finish_reason `tool_calls` when it called one. */
async function* asToolCalls(events: AsyncIterable<EngineEvent>, mode: 'tool' | 'either'): AsyncGenerator<EngineEvent, void, undefined> {
  const output = createToolCallOutput(mode, () => `call_${randomBytes(12).toString('hex')}`);
  for await (const event of events) {
    if (event.type === 'delta') {
      yield* output.push(event.text, event.tokenCount);
      continue;
    }
    const { events: rest, called } = output.end();
    yield* rest;
    yield called && event.finishReason === 'stop' ? { ...event, finishReason: 'tool_calls' } : event;
  }
}

/** The chat conversation through the model's template (with the tools offered), or a legacy completion's raw prompt. */
function render(state: Loaded, messages: ChatMessage[], tools: readonly ToolSpec[] | undefined, prompt: string | undefined): RenderedPrompt {
  return prompt === undefined ? renderPrompt(state.chatWrapper, state.model, messages, tools) : renderRawPrompt(state.model, prompt);
}

/** Aborts `target` when any of `sources` aborts (at once if one already has); returns the unlink. */
function abortOnAny(target: AbortController, sources: AbortSignal[]): () => void {
  const onAbort = (event: Event): void => target.abort((event.target as AbortSignal).reason);
  for (const source of sources) {
    if (source.aborted) target.abort(source.reason);
    else source.addEventListener('abort', onAbort, { once: true });
  }
  return () => sources.forEach((source) => source.removeEventListener('abort', onAbort));
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`llama-cpp: ${name} must be a positive integer, got ${value}`);
  }
  return value;
}
