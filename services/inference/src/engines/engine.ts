/**
 * The one interface every inference engine implements. One folder per engine: llama-cpp/,
 * openai/, simulator/; create-engine.ts picks one from the configuration. The inference service
 * (inference-service.ts) owns admission (capacity, queue) and the sampling defaults; an engine
 * only generates. Chat wire concepts (roles, finish reasons, the prompt-token estimate, context
 * window rules) live in lib/chat, shared with the gateway.
 */
import type { ChatMessage } from '../../../../lib/chat/messages.js';
import type { FinishReason } from '../../../../lib/chat/finish-reasons.js';
import type { ResponseFormat, ToolCallDelta, ToolChoice, ToolSpec } from '../../../../lib/chat/tools.js';

export type { ChatMessage } from '../../../../lib/chat/messages.js';
export type { ChatRole } from '../../../../lib/chat/roles.js';
export type { FinishReason } from '../../../../lib/chat/finish-reasons.js';

export interface GenerateParams {
  /** Correlation id (the gateway's X-Request-ID). */
  requestId: string;
  messages: ChatMessage[];
  /** Upper bound of completion tokens already resolved by the caller; undefined = remaining context. */
  maxTokens?: number | undefined;
  /** Undefined only for direct callers; the inference service always fills lib/chat's defaults. */
  temperature?: number | undefined;
  topP?: number | undefined;
  /** Sampling seed; undefined = a fresh random seed per request. */
  seed?: number | undefined;
  /** Up to 4 stop sequences; generation stops before them and they are not emitted. */
  stop: string[];
  /** Functions the model may call, with how (absent = no tools). */
  tools?: ToolSpec[] | undefined;
  toolChoice?: ToolChoice | undefined;
  /** Several calls in one turn; undefined = the engine's default. */
  parallelToolCalls?: boolean | undefined;
  /** Output constraint; undefined = text. */
  responseFormat?: ResponseFormat | undefined;
  presencePenalty?: number | undefined;
  frequencyPenalty?: number | undefined;
  /** Token id → bias, -100 to 100. */
  logitBias?: Record<number, number> | undefined;
  reasoningEffort?: string | undefined;
  user?: string | undefined;
  metadata?: Record<string, string> | undefined;
  /**
   * Raw text prompt of a legacy completion: when set, `messages` is empty and the model continues
   * this text as given (no chat template, no template end-of-turn stops).
   */
  prompt?: string | undefined;
}

export interface EmbedParams {
  /** Correlation id (the gateway's X-Request-ID). */
  requestId: string;
  /** Non-empty texts, one vector each. */
  inputs: string[];
  /** Requested vector length; undefined = the model's own. An engine that cannot produce it refuses (400 naming `dimensions`). */
  dimensions?: number | undefined;
}

export interface EmbedResult {
  /** One L2-normalized vector per input, in input order. */
  embeddings: number[][];
  /** Tokens of all inputs, counted as the engine evaluated them. */
  promptTokens: number;
}

export type { ResponseFormat, ToolCall, ToolChoice, ToolSpec } from '../../../../lib/chat/tools.js';

/**
 * The optional request parameters by their OpenAI name. Each engine declares the ones it cannot
 * honour ({@link Engine.unsupported}); the inference service refuses a request that sets one.
 */
export type OptionalParam =
  | 'tools'
  | 'response_format'
  | 'presence_penalty'
  | 'frequency_penalty'
  | 'logit_bias'
  | 'logprobs'
  | 'top_logprobs'
  | 'reasoning_effort';

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

export type EngineEvent =
  | {
      type: 'delta';
      text: string;
      tokenCount: number;
      /** Pieces of tool calls (OpenAI `delta.tool_calls`); text is then usually ''. */
      toolCalls?: ToolCallDelta[] | undefined;
      /** Reasoning text, apart from the answer (OpenAI-compatible `reasoning_content`). */
      reasoning?: string | undefined;
    }
  | { type: 'final'; finishReason: FinishReason; usage: Usage };

export interface EngineInfo {
  /** Engine kind: 'llama-cpp' | 'openai' | 'simulator'. */
  engine: string;
  /** Model name reported to clients (a simulator says so in the name). */
  model: string;
  /** system_fingerprint reported to clients. */
  fingerprint: string;
  /** Context window in tokens. */
  contextWindow: number;
  /** Human-readable backend description (e.g. llama.cpp gpu type, upstream URL). */
  backend: string;
}

export interface Engine {
  /** Loads models / checks upstreams. Resolves when the engine can serve. */
  start(signal?: AbortSignal): Promise<void>;
  info(): EngineInfo;
  /** Optional parameters this engine cannot honour: a request setting one is refused by name. */
  readonly unsupported: ReadonlySet<OptionalParam>;
  /** True once start() finished and the engine can serve. */
  ready(): boolean;
  /**
   * Counts prompt tokens the way the engine will (its own tokenizer where it has one): the chat
   * `messages` with the tools offered, or, when `prompt` is given, that raw text prompt.
   */
  countPromptTokens(messages: ChatMessage[], tools?: ToolSpec[], prompt?: string): Promise<number>;
  /**
   * Streams deltas then exactly one final event. Aborting `signal` stops generation promptly
   * and yields a final event with finishReason 'cancelled' (partial usage) when possible.
   * Errors throw (AppError subclasses from lib/errors for caller errors such as context overflow).
   */
  generate(params: GenerateParams, signal: AbortSignal): AsyncIterable<EngineEvent>;
  /** Embeds a batch of texts. Caller errors (too long, unsupported dimensions) throw lib/errors 400s. */
  embed(params: EmbedParams, signal: AbortSignal): Promise<EmbedResult>;
  close(): Promise<void>;
}
