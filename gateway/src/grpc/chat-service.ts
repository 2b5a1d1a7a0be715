/**
 * xerotier.gateway.v1.ChatService: the steps of chat/core.ts (the same auth and cache, quota,
 * worker choice, breakers and failure policy as HTTP) with the gRPC parse (parse.ts) and a gRPC
 * render: a start event, content deltas, one final event. The caller's deadline caps the tier's
 * timeout and travels to the worker; a cancelled call cancels the generation on the worker.
 * CreateEmbedding takes the steps of embeddings/core.ts the same way.
 */
import type { Logger } from 'pino';
import type { CallContext, Metadata, ServiceImplementation } from 'nice-grpc';
import {
  ChatServiceDefinition,
  FinishReason,
  type CreateChatCompletionResponse,
} from '../../../gen/xerotier/gateway/v1/chat_service.js';
import { FinishReason as WorkerFinishReason } from '../../../gen/xerotier/inference/v1/inference_service.js';
import { AppError, invalidRequest, unauthenticated } from '../../../lib/errors/app-error.js';
import { parseBearer } from '../bearer.js';
import { admit, authenticate, completionMeta, open, requestSignal, settle, type ChatCall, type ChatDeps, type SettledUsage } from '../chat/core.js';
import { toHttpError } from '../../../lib/errors/http.js';
import type { RequestOutcome, UsageTracking } from '../usage/tracker.js';
import type { Generation } from '../chat/generation.js';
import type { RequestSignal } from '../chat/request-signal.js';
import { countsAgainstWorker, draining, streamFailure } from '../failure-policy.js';
import { rateLimitHeaders } from '../openai/rate-limit-headers.js';
import { callerDeadline } from './caller-deadline.js';
import { parseChatRequest, parseEmbeddingRequest } from './parse.js';
import { admitEmbedding, runEmbedding, settleEmbedding, type Embedded } from '../embeddings/core.js';
import type { GatewayCallContext } from './call-context.js';

export interface ChatServiceDeps extends ChatDeps {
  logger: Logger;
  usage: UsageTracking;
  /** True once the gateway stops admitting new requests. */
  draining: () => boolean;
}

type Context = CallContext & GatewayCallContext;

const finishReasons: Partial<Record<WorkerFinishReason, FinishReason>> = {
  [WorkerFinishReason.FINISH_REASON_STOP]: FinishReason.FINISH_REASON_STOP,
  [WorkerFinishReason.FINISH_REASON_LENGTH]: FinishReason.FINISH_REASON_LENGTH,
  [WorkerFinishReason.FINISH_REASON_TOOL_CALLS]: FinishReason.FINISH_REASON_TOOL_CALLS,
};

export function chatService(deps: ChatServiceDeps): ServiceImplementation<typeof ChatServiceDefinition, GatewayCallContext> {
  return {
    async *createChatCompletion(request, context: Context) {
      const call = begin(deps, context, request.project, request.endpoint);
      const who = await authenticate(deps, call);
      context.gateway.keyId = who.principal.keyId;
      // One usage record per authenticated call, like HTTP.
      const tracked = deps.usage.track(call.requestId, who.principal, call.arrivedAt);
      let used: SettledUsage | undefined;
      let failure: unknown;
      try {
        const admission = await admit(deps, call, who, parseChatRequest(request));
        // Rate-limit figures as response metadata, on success and on error alike.
        setAll(context.header, rateLimitHeaders(admission.limits.requests, admission.limits.tokens));
        if (admission.denied) throw admission.denied;

        const signal = requestSignal(deps, call, who, context.signal, callerDeadline(context.metadata));
        try {
          const generation = await open(deps, call, who, admission, signal);
          tracked.firstToken(generation.start);
          try {
            const meta = completionMeta(call.requestId, generation);
            yield {
              start: {
                id: meta.id,
                model: meta.model,
                workerId: meta.workerId,
                systemFingerprint: meta.fingerprint,
                createTime: new Date(meta.created * 1000),
              },
            };
            yield* render(generation, signal, context.signal);
          } finally {
            generation.release();
          }
        } finally {
          used = settle(deps, call, who, admission, signal);
        }
      } catch (err) {
        failure = err;
        throw err;
      } finally {
        tracked.end(used ?? { promptTokens: 0, completionTokens: 0 }, used?.completed ?? false);
        tracked.close(() => outcomeOf(failure, context.signal.aborted));
      }
    },

    async createEmbedding(request, context: Context) {
      const call = begin(deps, context, request.project, request.endpoint);
      const who = await authenticate(deps, call, 'embeddings');
      context.gateway.keyId = who.principal.keyId;
      const tracked = deps.usage.track(call.requestId, who.principal, call.arrivedAt);
      let result: Embedded | undefined;
      let failure: unknown;
      try {
        const admission = await admitEmbedding(deps, call, who, parseEmbeddingRequest(request));
        setAll(context.header, rateLimitHeaders(admission.limits.requests, admission.limits.tokens));
        if (admission.denied) throw admission.denied;
        const signal = requestSignal(deps, call, who, context.signal, callerDeadline(context.metadata));
        try {
          result = await runEmbedding(deps, call, admission, signal);
        } finally {
          signal.dispose();
          settleEmbedding(deps, call, who, admission, result?.promptTokens ?? 0);
        }
        tracked.firstToken({ workerId: result.workerId, model: result.model });
        return {
          model: result.model,
          workerId: result.workerId,
          embeddings: result.vectors.map((values, index) => ({ index, values })),
          usage: { promptTokens: result.promptTokens, completionTokens: 0, totalTokens: result.promptTokens },
        };
      } catch (err) {
        failure = err;
        throw err;
      } finally {
        tracked.end({ promptTokens: result?.promptTokens ?? 0, completionTokens: 0 }, result !== undefined);
        tracked.close(() => outcomeOf(failure, context.signal.aborted));
      }
    },

    async listModels(request, context: Context) {
      const call = begin(deps, context, request.project, request.endpoint);
      const who = await authenticate(deps, call);
      context.gateway.keyId = who.principal.keyId;
      const limits = await deps.quota.limits({ requestId: call.requestId, keyId: who.principal.keyId, tier: who.endpoint.tier });
      setAll(context.header, rateLimitHeaders(limits?.requests, limits?.tokens));
      return {
        models: [{ id: who.endpoint.model, ownedBy: who.principal.project?.slug ?? 'xerotier', createTime: who.endpoint.createTime }],
      };
    },
  };
}

/** What every call starts with: refusal while draining, the target, the API key. */
function begin(deps: ChatServiceDeps, context: Context, project: string, endpoint: string): ChatCall {
  if (deps.draining()) throw draining();
  const { requestId, logger } = context.gateway;
  if (!project) throw invalidRequest("Missing required field 'project'.", { code: 'invalid_request', param: 'project' });
  if (!endpoint) throw invalidRequest("Missing required field 'endpoint'.", { code: 'invalid_request', param: 'endpoint' });
  return { requestId, logger, arrivedAt: performance.now(), apiKey: apiKey(context.metadata), project, endpoint };
}

function apiKey(metadata: Metadata): string {
  const values = metadata.getAll('authorization');
  if (values.length > 1) {
    throw invalidRequest('The authorization metadata must appear once.', { code: 'duplicate_header', param: 'authorization' });
  }
  const key = parseBearer(values[0]);
  if (!key) {
    throw unauthenticated('Missing or malformed authorization metadata; expected "authorization: Bearer <API key>".', {
      code: 'invalid_api_key',
    });
  }
  return key;
}

async function* render(generation: Generation, signal: RequestSignal, callGone: AbortSignal): AsyncGenerator<CreateChatCompletionResponse> {
  try {
    for await (const e of generation.events) {
      if (e.delta) {
        yield { delta: { content: e.delta.text, toolCalls: e.delta.toolCalls, reasoningContent: e.delta.reasoning } };
      } else if (e.final) {
        if (e.final.finishReason === WorkerFinishReason.FINISH_REASON_CANCELLED) return;
        const promptTokens = e.final.usage?.promptTokens ?? 0;
        const completionTokens = e.final.usage?.completionTokens ?? 0;
        yield {
          final: {
            finishReason: finishReasons[e.final.finishReason] ?? FinishReason.FINISH_REASON_STOP,
            usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens },
          },
        };
        return;
      }
    }
    throw new AppError('internal', 'The inference worker ended the stream unexpectedly.', { code: 'stream_interrupted' });
  } catch (err) {
    if (callGone.aborted) throw err; // the caller is gone: nobody to tell
    const reason = signal.reason();
    if (countsAgainstWorker(reason)) generation.worker.breaker.recordFailure(err);
    throw streamFailure(reason, err);
  }
}

/** The usage record's status for a gRPC call: the HTTP status of its error kind, 499 when the caller left. */
function outcomeOf(failure: unknown, callerGone: boolean): RequestOutcome {
  if (callerGone) return { status: 499, errorCode: 'cancelled', cancelled: true };
  if (failure === undefined) return { status: 200, errorCode: '', cancelled: false };
  const mapped = toHttpError(failure);
  return { status: mapped.status, errorCode: mapped.body.error.code ?? '', cancelled: false };
}

function setAll(metadata: Metadata, values: Record<string, string>): void {
  for (const [key, value] of Object.entries(values)) metadata.set(key, value);
}
