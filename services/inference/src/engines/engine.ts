/**
 * The one interface every inference engine implements (STYLE.md A-16).
 * One file per engine: llama-cpp.ts, openai.ts, simulator.ts. The inference service
 * (inference-service.ts) owns admission (capacity, queue); an engine only generates.
 */

export type ChatRole = 'system' | 'developer' | 'user' | 'assistant' | 'tool';

export interface ChatMessage {
  role: ChatRole;
  content: string;
  name?: string | undefined;
}

export interface GenerateParams {
  /** Correlation id (the gateway's X-Request-ID). */
  requestId: string;
  messages: ChatMessage[];
  /** Upper bound of completion tokens already resolved by the caller; undefined = remaining context. */
  maxTokens?: number | undefined;
  temperature?: number | undefined;
  topP?: number | undefined;
  /** Sampling seed; undefined = a fresh random seed per request. */
  seed?: number | undefined;
  /** Up to 4 stop sequences; generation stops before them and they are not emitted. */
  stop: string[];
}

export type FinishReason = 'stop' | 'length' | 'cancelled';

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

export type EngineEvent =
  | { type: 'delta'; text: string; tokenCount: number }
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
  /** True once start() finished and the engine can serve. */
  ready(): boolean;
  /** Counts prompt tokens the way the engine will (its own tokenizer where it has one). */
  countPromptTokens(messages: ChatMessage[]): Promise<number>;
  /**
   * Streams deltas then exactly one final event. Aborting `signal` stops generation promptly
   * and yields a final event with finishReason 'cancelled' (partial usage) when possible.
   * Errors throw (AppError subclasses from lib/errors for caller errors such as context overflow).
   */
  generate(params: GenerateParams, signal: AbortSignal): AsyncIterable<EngineEvent>;
  close(): Promise<void>;
}
