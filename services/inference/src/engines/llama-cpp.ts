/**
 * Real in-process inference with node-llama-cpp (llama.cpp): one model, one context, `parallel`
 * sequences handed out by a pool. See docs in /work/shared/reference/llama-cpp-engine.md.
 *
 * Rendering: messages go through the model's own chat template (the chat wrapper node-llama-cpp
 * resolves from the GGUF, e.g. ChatML), then the tokens are generated with `LlamaCompletion`.
 * We avoid `LlamaChatSession` (it injects a default system prompt and keeps history) and
 * `LlamaChat` (it silently shifts/truncates history that does not fit); this way the prompt we
 * count is exactly the prompt we evaluate, and a prompt that does not fit is a client error.
 *
 * Roles: `system` and `developer` are system messages (consecutive ones are merged by the
 * template); `assistant` is a model turn; `tool` is rendered as a user turn prefixed with
 * "Tool result (name):" because we carry no tool-call ids to pair it with a function call.
 * Message text is inserted as plain text, so "<|im_start|>" typed by a user is not a control
 * token.
 *
 * Sampling follows OpenAI defaults rather than llama.cpp's: temperature 1, top_p 1, no top_k,
 * no repeat penalty; temperature 0 is greedy. A request without a seed gets a random one
 * (node-llama-cpp's default is the current second, which would repeat outputs).
 *
 * Usage: promptTokens = tokens evaluated for the prompt (BOS included); completionTokens =
 * tokens the model sampled, including an end-of-generation token and the tokens of a stop
 * sequence, which are never emitted as text (llama-server and vLLM count them the same way).
 */
import { createHash, randomInt } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Logger } from 'pino';
import {
  LlamaCompletion,
  LlamaLogLevel,
  getLlama,
  resolveChatWrapper,
  resolveModelFile,
  type BuiltInChatWrapperType,
  type ChatHistoryItem,
  type Llama,
  type LlamaCompletionResponse,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
  type LlamaText,
  type Token,
} from 'node-llama-cpp';
import { AppError, invalidRequest, unavailable } from '../../../../lib/errors/app-error.js';
import type {
  ChatMessage,
  Engine,
  EngineEvent,
  EngineInfo,
  FinishReason,
  GenerateParams,
} from './engine.js';
import { createSequencePool, type SequencePool } from './sequence-pool.js';

export type LlamaGpuOption = 'auto' | 'cuda' | 'vulkan' | 'metal' | 'cpu';

export interface DownloadProgress {
  downloadedBytes: number;
  totalBytes: number;
}

export interface LlamaCppEngineOptions {
  /** Local path (absolute, or relative to `modelsDir`) or a model URI (`hf:user/repo/file.gguf`). */
  modelPath: string;
  /** Where models are looked up and downloaded to; node-llama-cpp's default when omitted. */
  modelsDir?: string | undefined;
  /** Download a missing model (only for URIs). Default false: a missing file fails start(). */
  allowDownload?: boolean | undefined;
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
  onDownloadProgress?: ((progress: DownloadProgress) => void) | undefined;
}

export interface LlamaCppEngineDeps {
  logger: Logger;
}

/** What llama.cpp detected and uses; for the Info/Health RPC and startup logs. */
export interface LlamaHardware {
  /** GPU backend in use ('cuda' | 'vulkan' | 'metal'), or false on CPU. */
  gpu: string | false;
  gpuDevices: string[];
  /** llama.cpp `systemInfo`, e.g. "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | …". */
  cpuFeatures: string;
}

export type LlamaCppEngine = Engine & { hardware(): LlamaHardware };

const DEFAULT_PARALLEL = 2;
const MAX_DEFAULT_CONTEXT = 4096;
const DOWNLOAD_LOG_INTERVAL_MS = 2000;

/** Everything that exists only while the model is loaded. */
interface Loaded {
  llama: Llama;
  model: LlamaModel;
  context: LlamaContext;
  chatWrapper: BuiltInChatWrapperType;
  pool: SequencePool<LlamaContextSequence>;
  info: EngineInfo;
  hardware: LlamaHardware;
}

interface RenderedPrompt {
  /** Tokens handed to LlamaCompletion, without the BOS token it prepends itself. */
  inputTokens: Token[];
  /** Tokens the model evaluates for the prompt, BOS included. */
  promptTokens: number;
  /** The template's end-of-turn markers (e.g. "<|im_end|>"), so a turn never runs on. */
  templateStops: LlamaText[];
}

/** Per-request generation settings, already resolved. */
interface Sampling {
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  stop: string[];
}

export function createLlamaCppEngine(
  opts: LlamaCppEngineOptions,
  deps: LlamaCppEngineDeps,
): LlamaCppEngine {
  const logger = deps.logger.child({ engine: 'llama-cpp' });
  const parallel = positiveInteger(opts.parallel ?? DEFAULT_PARALLEL, 'parallel');
  // In-flight generations, so close() can stop them before disposing the context.
  const activeStops = new Set<AbortController>();
  const activeRuns = new Set<Promise<void>>();
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
      const info = await describe({ opts, modelFile, model, context, llama, hardware, threads });
      const chatWrapper = resolveChatWrapper(model);
      if (closed) throw unavailable('llama-cpp engine was closed while starting');
      loaded = {
        llama,
        model,
        context,
        chatWrapper,
        pool: createSequencePool(sequences),
        info,
        hardware,
      };
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

  async function* generate(
    params: GenerateParams,
    signal: AbortSignal,
  ): AsyncGenerator<EngineEvent, void, undefined> {
    const state = requireLoaded();
    const prompt = renderPrompt(state, params.messages);
    const sampling = resolveSampling(params, prompt.promptTokens, state.context.contextSize);
    const cancelled: EngineEvent = {
      type: 'final',
      finishReason: 'cancelled',
      usage: { promptTokens: prompt.promptTokens, completionTokens: 0 },
    };
    if (signal.aborted) {
      yield cancelled;
      return;
    }
    let sequence: LlamaContextSequence;
    try {
      sequence = await state.pool.acquire(signal);
    } catch (err) {
      if (!signal.aborted) throw err;
      yield cancelled;
      return;
    }
    try {
      yield* streamCompletion(sequence, prompt, sampling, signal);
    } finally {
      state.pool.release(sequence);
    }
  }

  /**
   * Runs one completion on a leased sequence. Generation pushes into a queue that this
   * generator drains; leaving early (consumer `return()`, error) aborts generation and waits
   * for it to stop, so the sequence is idle when it goes back to the pool.
   */
  async function* streamCompletion(
    sequence: LlamaContextSequence,
    prompt: RenderedPrompt,
    sampling: Sampling,
    signal: AbortSignal,
  ): AsyncGenerator<EngineEvent, void, undefined> {
    const stop = new AbortController();
    const forwardAbort = (): void => stop.abort(signal.reason);
    signal.addEventListener('abort', forwardAbort, { once: true });
    if (signal.aborted) forwardAbort(); // aborted while we were getting the sequence
    activeStops.add(stop);
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
        repeatPenalty: false,
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
            usage: {
              promptTokens: prompt.promptTokens,
              completionTokens: Math.max(sampled, emittedTokens),
            },
          });
          events.end();
        },
        (err: unknown) => events.fail(err),
      );
    activeRuns.add(run);
    try {
      yield* events;
    } finally {
      stop.abort();
      signal.removeEventListener('abort', forwardAbort);
      await run;
      activeRuns.delete(run);
      activeStops.delete(stop);
      completion.dispose({ disposeSequence: false });
    }
  }

  async function close(): Promise<void> {
    closed = true;
    await starting?.catch(() => undefined);
    const state = loaded;
    loaded = undefined;
    if (state === undefined) return;
    state.pool.close(unavailable('llama-cpp engine is closed'));
    for (const stop of activeStops) stop.abort(unavailable('llama-cpp engine is closing'));
    await Promise.allSettled([...activeRuns]);
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
    ready: () => loaded !== undefined && !closed,
    countPromptTokens: async (messages: ChatMessage[]) =>
      renderPrompt(requireLoaded(), messages).promptTokens,
    generate,
    close,
    hardware: () => loaded?.hardware ?? { gpu: false, gpuDevices: [], cpuFeatures: '' },
  };
}

/** @internal Maps API messages onto node-llama-cpp chat history (see the file comment). */
export function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history = messages.map((message): ChatHistoryItem => {
    switch (message.role) {
      case 'system':
      case 'developer':
        return { type: 'system', text: message.content };
      case 'user':
        return { type: 'user', text: message.content };
      case 'assistant':
        return { type: 'model', response: message.content === '' ? [] : [message.content] };
      case 'tool':
        return { type: 'user', text: `${toolPrefix(message.name)}\n${message.content}` };
    }
  });
  // An empty model turn at the end renders the "assistant is speaking now" header.
  history.push({ type: 'model', response: [] });
  return history;
}

function toolPrefix(name: string | undefined): string {
  return name === undefined || name === '' ? 'Tool result:' : `Tool result (${name}):`;
}

function renderPrompt(state: Loaded, messages: readonly ChatMessage[]): RenderedPrompt {
  const { contextText, stopGenerationTriggers } = state.chatWrapper.generateContextState({
    chatHistory: toChatHistory(messages),
  });
  const tokens = contextText.tokenize(state.model.tokenizer);
  // Templates render BOS themselves; LlamaCompletion prepends one too when the model wants it.
  const bos = state.model.tokens.bos;
  const prependsBos = state.model.tokens.shouldPrependBosToken && bos !== null;
  const inputTokens = prependsBos && tokens[0] === bos ? tokens.slice(1) : tokens;
  return {
    inputTokens,
    promptTokens: inputTokens.length + (prependsBos ? 1 : 0),
    templateStops: stopGenerationTriggers,
  };
}

function resolveSampling(params: GenerateParams, promptTokens: number, contextWindow: number): Sampling {
  // At least one position must stay free for the first completion token.
  if (promptTokens >= contextWindow) {
    throw invalidRequest(
      `This model's maximum context length is ${contextWindow} tokens, but the messages use ` +
        `${promptTokens} tokens, leaving no room for a completion. Shorten the messages.`,
      { code: 'context_length_exceeded', param: 'messages' },
    );
  }
  const room = contextWindow - promptTokens;
  if (params.maxTokens !== undefined && !(Number.isInteger(params.maxTokens) && params.maxTokens > 0)) {
    // LlamaCompletion treats 0 as "no limit", so never pass it through.
    throw invalidRequest('max_tokens must be a positive integer', { param: 'max_tokens' });
  }
  return {
    maxTokens: Math.min(params.maxTokens ?? room, room),
    temperature: params.temperature ?? 1,
    topP: params.topP ?? 1,
    seed: params.seed === undefined ? randomInt(0, 2 ** 32 - 1) : Math.trunc(params.seed) >>> 0,
    stop: params.stop.filter((s) => s !== ''),
  };
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

/** A download that makes no progress for this long is abandoned (offline machines hang in retries). */
const DOWNLOAD_STALL_MS = 15_000;

async function resolveModel(
  opts: LlamaCppEngineOptions,
  logger: Logger,
  signal: AbortSignal | undefined,
): Promise<string> {
  // node-llama-cpp retries unreachable hosts for minutes with no progress: bound it ourselves so
  // an offline machine falls back (or fails) in seconds. Any progress resets the stall timer.
  const stall = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => stall.abort(new Error(`no download progress for ${DOWNLOAD_STALL_MS / 1000} s`)), DOWNLOAD_STALL_MS);
  };
  const report = createDownloadReporter(opts, logger);
  const combined = signal ? AbortSignal.any([signal, stall.signal]) : stall.signal;
  const stalled = new Promise<never>((_, reject) => {
    combined.addEventListener('abort', () => reject(combined.reason instanceof Error ? combined.reason : new Error('aborted')), { once: true });
  });
  arm();
  try {
    return await Promise.race([
      resolveModelFile(opts.modelPath, {
        download: opts.allowDownload === true ? 'auto' : false,
        cli: false,
        verify: false, // verify:true hangs offline and ignores the signal
        onProgress: (status) => {
          arm();
          report(status);
        },
        ...(opts.modelsDir === undefined ? {} : { directory: opts.modelsDir }),
        signal: combined,
      }),
      stalled,
    ]);
  } catch (err) {
    if (signal?.aborted === true) throw err;
    throw new AppError(
      'unavailable',
      `llama-cpp: cannot resolve model "${opts.modelPath}" ` +
        `(modelsDir ${opts.modelsDir ?? 'default'}, download ${opts.allowDownload === true ? 'allowed' : 'disabled'}): ` +
        errorMessage(err),
      { code: 'model_unavailable', cause: err },
    );
  } finally {
    clearTimeout(timer);
  }
}

/** Logs download progress at most every 2 s (and at 100%); forwards every update. */
function createDownloadReporter(
  opts: LlamaCppEngineOptions,
  logger: Logger,
): (status: { totalSize: number; downloadedSize: number }) => void {
  let lastLoggedAt = 0;
  let lastPercent = -1;
  return ({ totalSize, downloadedSize }) => {
    opts.onDownloadProgress?.({ downloadedBytes: downloadedSize, totalBytes: totalSize });
    const percent = totalSize > 0 ? Math.floor((downloadedSize / totalSize) * 100) : 0;
    const now = Date.now();
    if (percent === lastPercent) return;
    if (percent < 100 && now - lastLoggedAt < DOWNLOAD_LOG_INTERVAL_MS) return;
    lastLoggedAt = now;
    lastPercent = percent;
    logger.info(
      { model: opts.modelPath, percent, downloadedBytes: downloadedSize, totalBytes: totalSize },
      'downloading model',
    );
  };
}

async function loadLlama(gpu: LlamaGpuOption, logger: Logger): Promise<Llama> {
  try {
    return await getLlama({
      gpu: gpu === 'cpu' ? false : gpu,
      build: 'never', // never compile llama.cpp at runtime; prebuilt binaries or fail
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => logLlamaMessage(logger, level, message),
    });
  } catch (err) {
    throw new AppError(
      'unavailable',
      `llama-cpp: cannot load the "${gpu}" backend: ${errorMessage(err)}`,
      { code: 'backend_unavailable', cause: err },
    );
  }
}

function logLlamaMessage(logger: Logger, level: LlamaLogLevel, message: string): void {
  const text = message.trimEnd();
  if (text === '') return;
  switch (level) {
    case LlamaLogLevel.fatal:
    case LlamaLogLevel.error:
      logger.error({ source: 'llama.cpp' }, text);
      return;
    case LlamaLogLevel.warn:
      logger.warn({ source: 'llama.cpp' }, text);
      return;
    case LlamaLogLevel.info:
    case LlamaLogLevel.log:
      logger.info({ source: 'llama.cpp' }, text);
      return;
    default:
      logger.debug({ source: 'llama.cpp' }, text);
  }
}

function defaultContextSize(model: LlamaModel): number {
  const trained = model.trainContextSize;
  return trained > 0 ? Math.min(trained, MAX_DEFAULT_CONTEXT) : MAX_DEFAULT_CONTEXT;
}

async function detectHardware(llama: Llama): Promise<LlamaHardware> {
  return {
    gpu: llama.gpu,
    gpuDevices: llama.gpu === false ? [] : await llama.getGpuDeviceNames(),
    cpuFeatures: llama.systemInfo.trim(),
  };
}

async function describe(args: {
  opts: LlamaCppEngineOptions;
  modelFile: string;
  model: LlamaModel;
  context: LlamaContext;
  llama: Llama;
  hardware: LlamaHardware;
  threads: number;
}): Promise<EngineInfo> {
  const { opts, modelFile, model, context, llama, hardware, threads } = args;
  const { size } = await stat(modelFile);
  const ggufName = model.fileInfo.metadata.general?.name;
  const device = hardware.gpu === false ? 'cpu' : hardware.gpu;
  const devices = hardware.gpuDevices.length > 0 ? ` [${hardware.gpuDevices.join(', ')}]` : '';
  return {
    engine: 'llama-cpp',
    model: opts.modelName ?? (ggufName !== undefined && ggufName !== '' ? ggufName : fileStem(modelFile)),
    fingerprint: fingerprint(modelFile, size),
    contextWindow: context.contextSize, // per sequence
    backend:
      `llama.cpp ${llama.llamaCppRelease.release} ${device}${devices}, ` +
      `${threads} threads, ${context.totalSequences} sequences`,
  };
}

/** Before start(): what we know from the options alone. */
function pendingInfo(opts: LlamaCppEngineOptions): EngineInfo {
  return {
    engine: 'llama-cpp',
    model: opts.modelName ?? fileStem(opts.modelPath),
    fingerprint: 'fp_llamacpp_pending',
    contextWindow: opts.contextSize ?? 0,
    backend: 'llama.cpp (not loaded)',
  };
}

/** Same file name and size → same fingerprint; cheap, and changes when the model file does. */
function fingerprint(modelFile: string, size: number): string {
  const hash = createHash('sha256').update(`${basename(modelFile)}:${size}`).digest('hex');
  return `fp_llamacpp_${hash.slice(0, 10)}`;
}

function fileStem(path: string): string {
  return basename(path).replace(/\.gguf$/i, '');
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`llama-cpp: ${name} must be a positive integer, got ${value}`);
  }
  return value;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface EventQueue<T> extends AsyncIterable<T> {
  push(item: T): void;
  end(): void;
  fail(error: unknown): void;
}

/** Unbounded single-consumer queue bridging node-llama-cpp callbacks to an async iterator. */
function createEventQueue<T>(): EventQueue<T> {
  const items: T[] = [];
  let finished = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  return {
    push(item) {
      items.push(item);
      notify();
    },
    end() {
      finished = true;
      notify();
    },
    fail(error) {
      failure = { error };
      notify();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (items.length > 0) {
          yield items.shift() as T;
          continue;
        }
        if (failure !== undefined) throw failure.error;
        if (finished) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
  };
}
