/**
 * A typed Node client for the gateway's gRPC front door (xerotier.gateway.v1.ChatService):
 *
 *   const chat = createChatClient({ address: '127.0.0.1:8081', apiKey: process.env.KEY! });
 *   for await (const event of chat.createChatCompletion({ project: 'demo', endpoint: 'chat',
 *       messages: [{ role: 'user', content: 'Hello!' }] })) {
 *     if (event.delta) process.stdout.write(event.delta.content);
 *   }
 *
 * Failures are ChatClientError: the gRPC status, the platform's `code` string (the same as the
 * HTTP API's `error.code`), the retry delay and quota details from the rich error model, and the
 * response metadata (x-request-id, x-ratelimit-*).
 */
import { ClientError, createChannel, createClient, Metadata, Status, type Channel } from 'nice-grpc';
import {
  ChatServiceDefinition,
  Role,
  type ChatServiceClient,
  type CreateChatCompletionRequest,
  type CreateChatCompletionResponse,
  type CreateEmbeddingRequest,
  type CreateEmbeddingResponse,
  type ListModelsResponse,
  type ToolCall,
} from '../gen/xerotier/gateway/v1/chat_service.js';
import { decodeRichStatus, STATUS_DETAILS_TRAILER, type QuotaViolation } from '../lib/errors/rich-status.js';

export { FinishReason, ResponseFormatType, Role, ToolChoiceMode } from '../gen/xerotier/gateway/v1/chat_service.js';
export type { CreateChatCompletionResponse, CreateEmbeddingResponse, ListModelsResponse };

export type RoleName = 'system' | 'developer' | 'user' | 'assistant' | 'tool';

export interface ChatRequest extends Omit<Partial<CreateChatCompletionRequest>, 'messages'> {
  project: string;
  endpoint: string;
  messages: Array<{ role: RoleName | Role; content: string; name?: string; toolCalls?: ToolCall[]; toolCallId?: string }>;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** gRPC deadline: a Date, or milliseconds from now. */
  deadline?: Date | number;
  /** Response metadata (x-request-id, x-ratelimit-*), as soon as it arrives. */
  onMetadata?: (metadata: Record<string, string>) => void;
}

export interface ChatClient {
  /** Streams a completion: one `start`, then `delta`s, then one `final`. */
  createChatCompletion(request: ChatRequest, options?: CallOptions): AsyncIterable<CreateChatCompletionResponse>;
  /** Collects a completion into its text, finish reason and usage (unary-style use). */
  complete(request: ChatRequest, options?: CallOptions): Promise<Completion>;
  listModels(request: { project: string; endpoint: string }, options?: CallOptions): Promise<ListModelsResponse>;
  /** Embeds `inputs` on an embeddings endpoint: one vector per input, in order. */
  createEmbedding(
    request: Partial<CreateEmbeddingRequest> & { project: string; endpoint: string; inputs: string[] },
    options?: CallOptions,
  ): Promise<CreateEmbeddingResponse>;
  close(): void;
}

export interface Completion {
  id: string;
  model: string;
  workerId: string;
  text: string;
  finishReason: number;
  usage: { promptTokens: number; completionTokens: number; totalTokens: number };
}

export class ChatClientError extends Error {
  constructor(
    /** gRPC status code. */
    readonly status: Status,
    message: string,
    /** The platform's error code (HTTP `error.code`), e.g. `rate_limit_exceeded`. */
    readonly code: string | undefined,
    /** From RetryInfo: how long to wait before retrying, when retrying makes sense. */
    readonly retryDelayMs: number | undefined,
    readonly quotaFailure: QuotaViolation[] | undefined,
    /** ErrorInfo metadata: `type` (OpenAI error type), `param`, `http_status`. */
    readonly info: Record<string, string>,
    /** Response metadata and trailers (x-request-id, x-ratelimit-*). */
    readonly metadata: Record<string, string>,
  ) {
    super(message);
    this.name = 'ChatClientError';
  }
}

const roles: Record<RoleName, Role> = {
  system: Role.ROLE_SYSTEM,
  developer: Role.ROLE_DEVELOPER,
  user: Role.ROLE_USER,
  assistant: Role.ROLE_ASSISTANT,
  tool: Role.ROLE_TOOL,
};

export function createChatClient(options: { address: string; apiKey: string; channel?: Channel }): ChatClient {
  const channel = options.channel ?? createChannel(options.address);
  const client: ChatServiceClient = createClient(ChatServiceDefinition, channel);
  const callOptions = (o: CallOptions | undefined, seen: Metadata, signal: AbortSignal | undefined) => ({
    metadata: deadlineMetadata(Metadata({ authorization: `Bearer ${options.apiKey}` }), o?.deadline),
    ...(signal ? { signal } : {}),
    onHeader(header: Metadata) {
      for (const [k, v] of header) seen.set(k, v);
      o?.onMetadata?.(textOf(header));
    },
    onTrailer(trailer: Metadata) {
      for (const [k, v] of trailer) seen.set(k, v);
    },
  });
  const toRequest = (r: ChatRequest): Partial<CreateChatCompletionRequest> => ({
    ...r,
    messages: r.messages.map((m) => ({ role: typeof m.role === 'string' ? roles[m.role] : m.role, content: m.content, name: m.name ?? '', toolCalls: m.toolCalls ?? [], toolCallId: m.toolCallId ?? '' })),
  });

  async function* createChatCompletion(request: ChatRequest, o?: CallOptions): AsyncGenerator<CreateChatCompletionResponse> {
    const seen = Metadata();
    const local = localDeadline(o);
    try {
      yield* client.createChatCompletion(toRequest(request), callOptions(o, seen, local.signal));
    } catch (err) {
      throw local.expired() ? deadlineError(seen) : toChatClientError(err, seen);
    } finally {
      local.clear();
    }
  }

  return {
    createChatCompletion,
    async complete(request, o) {
      const out: Completion = { id: '', model: '', workerId: '', text: '', finishReason: 0, usage: { promptTokens: 0, completionTokens: 0, totalTokens: 0 } };
      for await (const event of createChatCompletion(request, o)) {
        if (event.start) Object.assign(out, { id: event.start.id, model: event.start.model, workerId: event.start.workerId });
        if (event.delta) out.text += event.delta.content;
        if (event.final) Object.assign(out, { finishReason: event.final.finishReason, usage: event.final.usage ?? out.usage });
      }
      return out;
    },
    async listModels(request, o) {
      const seen = Metadata();
      const local = localDeadline(o);
      try {
        return await client.listModels(request, callOptions(o, seen, local.signal));
      } catch (err) {
        throw local.expired() ? deadlineError(seen) : toChatClientError(err, seen);
      } finally {
        local.clear();
      }
    },
    async createEmbedding(request, o) {
      const seen = Metadata();
      const local = localDeadline(o);
      try {
        return await client.createEmbedding(request, callOptions(o, seen, local.signal));
      } catch (err) {
        throw local.expired() ? deadlineError(seen) : toChatClientError(err, seen);
      } finally {
        local.clear();
      }
    },
    close: () => channel.close(),
  };
}

const deadlineMs = (deadline: Date | number): number =>
  Math.max(1, Math.ceil(deadline instanceof Date ? deadline.getTime() - Date.now() : deadline));

/**
 * The deadline travels as gRPC's own `grpc-timeout` header, so the gateway honours it (and caps
 * the tier's timeout with it) exactly as for any other gRPC client.
 */
function deadlineMetadata(metadata: Metadata, deadline: Date | number | undefined): Metadata {
  if (deadline !== undefined) metadata.set('grpc-timeout', `${deadlineMs(deadline)}m`);
  return metadata;
}

/** A local backstop for the deadline (the server normally ends the call first) plus the caller's signal. */
function localDeadline(o: CallOptions | undefined) {
  if (o?.deadline === undefined) return { signal: o?.signal, expired: () => false, clear: () => undefined };
  const controller = new AbortController();
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    controller.abort();
  }, deadlineMs(o.deadline) + DEADLINE_BACKSTOP_MS);
  return {
    signal: o.signal ? AbortSignal.any([o.signal, controller.signal]) : controller.signal,
    expired: () => expired,
    clear: () => clearTimeout(timer),
  };
}

const DEADLINE_BACKSTOP_MS = 1000;

function deadlineError(seen: Metadata): ChatClientError {
  return new ChatClientError(Status.DEADLINE_EXCEEDED, 'Deadline exceeded', undefined, undefined, undefined, {}, textOf(seen));
}

function toChatClientError(err: unknown, seen: Metadata): unknown {
  if (!(err instanceof ClientError)) return err;
  const details = seen.get(STATUS_DETAILS_TRAILER);
  const rich = details instanceof Uint8Array ? decodeRichStatus(details) : undefined;
  return new ChatClientError(
    err.code,
    err.details,
    rich?.errorInfo?.reason,
    rich?.retryDelayMs,
    rich?.quotaFailure,
    rich?.errorInfo?.metadata ?? {},
    textOf(seen),
  );
}

function textOf(metadata: Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, values] of metadata) {
    const v = values[0];
    if (typeof v === 'string') out[key] = v;
  }
  return out;
}
