/**
 * POST /{project}/{endpoint}/v1/chat/completions — the request flow of ARCHITECTURE.md:
 * validate → authenticate → reserve quota → pick a worker and wait for the first token →
 * stream (SSE) or aggregate → settle the real usage, also on cancel and failure.
 */
import { recordTokens, type GatewayMetrics } from '../../../lib/metrics/metrics.js';
import type { Request, Response } from 'express';
import { Scope } from '../../../gen/xerotier/auth/v1/auth_service.js';
import {
  FinishReason,
  Role,
  type GenerateRequest,
  type GenerateResponse,
} from '../../../gen/xerotier/inference/v1/inference_service.js';
import { AppError, invalidRequest } from '../../../lib/errors/app-error.js';
import { toHttpError } from '../../../lib/errors/http.js';
import type { TierTable } from '../../../lib/tiers/tier-table.js';
import { bearerKey } from '../bearer.js';
import type { GatewayConfig } from '../config.js';
import { openGeneration } from '../generation.js';
import { rateLimitHeaders } from '../openai/rate-limit-headers.js';
import {
  contentText,
  DEFAULT_TEMPERATURE,
  DEFAULT_TOP_P,
  estimatePromptTokens,
  parseChatCompletionRequest,
  type ChatCompletionRequest,
} from '../openai/schema.js';
import { openSse } from '../openai/sse.js';
import type { RequestLocals } from '../request-context.js';
import type { AuthPort, QuotaPort } from '../upstreams.js';
import type { UsageTracking } from '../usage/tracker.js';
import type { WorkerPool } from '../worker-pool.js';

export interface ChatDeps {
  config: GatewayConfig;
  auth: AuthPort;
  quota: QuotaPort;
  pool: WorkerPool;
  tiers: TierTable;
  /** Aborted when the gateway's drain grace is over. */
  shutdown: AbortSignal;
  metrics: Pick<GatewayMetrics, 'timeToFirstToken' | 'tokensTotal'>;
  usage: UsageTracking;
}

const roles: Record<ChatCompletionRequest['messages'][number]['role'], Role> = {
  system: Role.ROLE_SYSTEM,
  developer: Role.ROLE_DEVELOPER,
  user: Role.ROLE_USER,
  assistant: Role.ROLE_ASSISTANT,
  tool: Role.ROLE_TOOL,
};

const finishReasons: Partial<Record<FinishReason, string>> = {
  [FinishReason.FINISH_REASON_STOP]: 'stop',
  [FinishReason.FINISH_REASON_LENGTH]: 'length',
};

/** Why the request's deadline controller fired: the tier's total request time, or stream silence. */
class Deadline extends Error {
  constructor(readonly kind: 'request' | 'idle') {
    super(kind);
  }
}

export function chatCompletionsHandler(deps: ChatDeps) {
  return async (req: Request, res: Response): Promise<void> => {
    const locals = res.locals as RequestLocals;
    const { requestId, logger } = locals;
    const started = performance.now();
    const project = String(req.params['project']);
    const endpointSlug = String(req.params['endpoint']);
    const apiKey = bearerKey(req);
    const principal = await deps.auth.authenticate(
      { apiKey, project, endpoint: endpointSlug, scope: Scope.SCOPE_INFERENCE },
      requestId,
    );
    const ledger = deps.usage.begin(res, principal, started);
    const body = parseChatCompletionRequest(req.body);
    const endpoint = principal.endpoint;
    if (!endpoint) throw new AppError('internal', 'auth returned no endpoint');
    const tier = deps.tiers.get(endpoint.tier);
    if (!tier) throw new AppError('internal', `endpoint tier ${endpoint.tier} is not configured`);

    const promptEstimate = estimatePromptTokens(body.messages);
    // A prompt that cannot fit the context window is the caller's error whatever the quota says.
    // The estimate is rough, so only a clear overflow is refused here; the worker's tokenizer
    // refuses the rest with the same code.
    if (promptEstimate > endpoint.contextWindow) {
      throw invalidRequest(
        `This model's maximum context length is ${endpoint.contextWindow} tokens; the messages are about ${promptEstimate} tokens.`,
        { code: 'context_length_exceeded', param: 'messages' },
      );
    }
    const room = Math.max(1, endpoint.contextWindow - promptEstimate);
    const requested = body.max_completion_tokens ?? body.max_tokens ?? undefined;
    // Auto-clamping (digest item 25): omitted or too large → the context left.
    const maxTokens = Math.min(requested ?? room, room);

    // Fail fast, before charging the key's quota, when no worker of the pool could take it.
    const pools = [endpoint.hardwarePool, ...tier.pools.filter((p) => p !== endpoint.hardwarePool)];
    deps.pool.pick(pools, new Set());

    const keyId = principal.keyId;
    const reservation = await deps.quota.reserve({
      requestId,
      keyId,
      tier: endpoint.tier,
      tokens: promptEstimate + maxTokens,
    });
    locals.headers = rateLimitHeaders(reservation?.requests, reservation?.tokens);
    res.set(locals.headers);
    if (reservation && reservation.decision !== 1 /* DECISION_ALLOW */) {
      const retryable = reservation.retryable;
      throw new AppError(
        'rate_limited',
        retryable
          ? `Rate limit reached for ${reservation.deniedBy || 'requests'} on this API key; retry after the time in Retry-After.`
          : 'This request needs more tokens than the tier allows per minute; reduce max_tokens or the prompt.',
        {
          code: retryable ? 'rate_limit_exceeded' : 'tokens_exceed_limit',
          // Every 429 says when to come back; a request that can never fit is also marked
          // x-should-retry: false, and its Retry-After is the whole window.
          retryAfterSeconds: retryable ? Math.max(1, Math.ceil(reservation.retryAfterMs / 1000)) : 60,
          retryable,
        },
      );
    }

    // One signal for everything that ends this request: client gone, deadline, shutdown.
    const clientGone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) clientGone.abort(new AppError('cancelled', 'client closed the connection'));
    });
    const deadline = new AbortController();
    // The tier's request timeout counts from arrival (auth and quota time included).
    const remainingMs = Math.max(1, tier.requestTimeoutSeconds * 1000 - (performance.now() - started));
    const deadlineAt = new Date(Date.now() + remainingMs);
    const deadlineTimer = setTimeout(() => deadline.abort(new Deadline('request')), remainingMs);
    const signal = AbortSignal.any([clientGone.signal, deadline.signal, deps.shutdown]);

    const generateRequest: GenerateRequest = {
      requestId,
      messages: body.messages.map((m) => ({ role: roles[m.role], content: contentText(m.content), name: m.name ?? '' })),
      maxTokens,
      temperature: body.temperature ?? DEFAULT_TEMPERATURE,
      topP: body.top_p ?? DEFAULT_TOP_P,
      seed: body.seed ?? undefined,
      stop: body.stop === undefined || body.stop === null ? [] : Array.isArray(body.stop) ? body.stop : [body.stop],
    };

    let completionTokens = 0;
    let promptTokens = promptEstimate;
    let usage: { promptTokens: number; completionTokens: number } | undefined;
    try {
      const gen = await openGeneration({
        pool: deps.pool,
        pools,
        request: generateRequest,
        requestId,
        signal,
        deadline: deadlineAt,
        ttftTimeoutMs: deps.config.GATEWAY_TTFT_TIMEOUT_MS,
        maxAttempts: 3,
      }).catch((err: unknown) => {
        if (deadline.signal.aborted) throw deadlineError();
        if (deps.shutdown.aborted) {
          throw new AppError('unavailable', 'The gateway is shutting down; retry the request.', { code: 'gateway_draining', retryAfterSeconds: 1 });
        }
        throw err;
      });
      deps.metrics.timeToFirstToken.observe({ pool: gen.worker.pool }, (performance.now() - started) / 1000);
      ledger.firstToken(gen.start);
      if (gen.start.promptTokens > 0) promptTokens = gen.start.promptTokens;
      res.setHeader('x-xerotier-worker-id', gen.start.workerId);
      const meta = {
        id: `chatcmpl-${requestId.replace(/^req_/, '')}`,
        created: Math.floor(Date.now() / 1000),
        model: gen.start.model,
        fingerprint: gen.start.systemFingerprint,
      };
      // Idle-stream timeout per tier: silence between tokens ends the stream.
      const idle = idleTimer(tier.idleStreamTimeoutSeconds * 1000, deadline);
      try {
        const events = relay(gen.first, gen.rest, idle.touch);
        const onDelta = (tokens: number): void => {
          completionTokens += tokens;
        };
        if (body.stream) {
          usage = await streamResponse(res, events, meta, body, locals.headers ?? {}, onDelta, gen.worker.breaker.recordFailure, deadline.signal, deps.shutdown);
        } else {
          usage = await jsonResponse(res, events, meta, onDelta);
        }
      } finally {
        idle.stop();
        gen.release();
      }
    } finally {
      clearTimeout(deadlineTimer);
      // Bill what was really used: the engine's final count; if the stream ended early (client
      // gone, worker lost), the engine's prompt count plus the tokens that reached the client.
      if (usage) recordTokens(deps.metrics, usage);
      const tokens = usage ? usage.promptTokens + usage.completionTokens : completionTokens > 0 ? promptTokens + completionTokens : 0;
      if (reservation) {
        deps.quota.settle({ requestId, keyId, tier: endpoint.tier, tokens });
      }
      ledger.end(usage ?? (completionTokens > 0 ? { promptTokens, completionTokens } : { promptTokens: 0, completionTokens: 0 }), usage !== undefined);
      if (signal.aborted) logger.info({ reason: describe(signal.reason), completionTokens }, 'request ended early');
    }
  };
}

function deadlineError(): AppError {
  return new AppError('timeout', 'The request timed out before the model produced a first token.', {
    code: 'request_timeout',
  });
}

function describe(reason: unknown): string {
  if (reason instanceof Deadline) return `${reason.kind} timeout`;
  if (reason instanceof AppError) return reason.code;
  return 'shutdown';
}

function idleTimer(ms: number, target: AbortController) {
  let timer = setTimeout(() => target.abort(new Deadline('idle')), ms);
  return {
    touch: () => {
      clearTimeout(timer);
      timer = setTimeout(() => target.abort(new Deadline('idle')), ms);
    },
    stop: () => clearTimeout(timer),
  };
}

async function* relay(
  first: GenerateResponse,
  rest: AsyncIterator<GenerateResponse>,
  touch: () => void,
): AsyncGenerator<GenerateResponse> {
  try {
    let event = first;
    for (;;) {
      if (event.final) {
        // The worker ends the call right after its final event: read to the end before handing the
        // final over, so a finished call is never cancelled (each cancel is an HTTP/2 RST_STREAM,
        // and a server closes connections that reset too often).
        await drainEnd(rest);
        yield event;
        return;
      }
      yield event;
      const next = await rest.next();
      if (next.done) return;
      touch();
      event = next.value;
    }
  } finally {
    // Stop the worker whenever we stop reading early (client gone, error); a no-op once ended.
    await rest.return?.();
  }
}

/** Waits (bounded) for the end of a call whose final event arrived. */
async function drainEnd(rest: AsyncIterator<GenerateResponse>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const bounded = new Promise<void>((resolve) => (timer = setTimeout(resolve, 1000)));
  await Promise.race([rest.next().then(() => undefined, () => undefined), bounded]);
  clearTimeout(timer);
}

interface Meta {
  id: string;
  created: number;
  model: string;
  fingerprint: string;
}

type Usage = { promptTokens: number; completionTokens: number };

function usageBody(u: Usage) {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: 0 },
  };
}

async function jsonResponse(
  res: Response,
  events: AsyncIterable<GenerateResponse>,
  meta: Meta,
  onDelta: (tokens: number) => void,
): Promise<Usage> {
  let text = '';
  for await (const e of events) {
    if (e.delta) {
      text += e.delta.text;
      onDelta(e.delta.tokenCount);
    } else if (e.final) {
      const usage = { promptTokens: e.final.usage?.promptTokens ?? 0, completionTokens: e.final.usage?.completionTokens ?? 0 };
      if (e.final.finishReason === FinishReason.FINISH_REASON_CANCELLED) throw new AppError('cancelled', 'request cancelled');
      res.status(200).json({
        id: meta.id,
        object: 'chat.completion',
        created: meta.created,
        model: meta.model,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: text, refusal: null },
            logprobs: null,
            finish_reason: finishReasons[e.final.finishReason] ?? 'stop',
          },
        ],
        usage: usageBody(usage),
        service_tier: null,
        system_fingerprint: meta.fingerprint,
      });
      return usage;
    }
  }
  throw new AppError('internal', 'the worker ended the stream without a result');
}

async function streamResponse(
  res: Response,
  events: AsyncIterable<GenerateResponse>,
  meta: Meta,
  body: ChatCompletionRequest,
  headers: Record<string, string>,
  onDelta: (tokens: number) => void,
  recordFailure: (err: unknown) => void,
  deadline: AbortSignal,
  shutdown: AbortSignal,
): Promise<Usage | undefined> {
  const includeUsage = body.stream_options?.include_usage === true;
  const sse = openSse(res, headers);
  const chunk = (delta: object, finishReason: string | null) => ({
    id: meta.id,
    object: 'chat.completion.chunk',
    created: meta.created,
    model: meta.model,
    service_tier: null,
    system_fingerprint: meta.fingerprint,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    ...(includeUsage ? { usage: null } : {}),
  });
  let first = true;
  try {
    for await (const e of events) {
      if (e.delta) {
        onDelta(e.delta.tokenCount);
        await sse.send(chunk(first ? { role: 'assistant', content: e.delta.text } : { content: e.delta.text }, null));
        first = false;
      } else if (e.final) {
        const usage = { promptTokens: e.final.usage?.promptTokens ?? 0, completionTokens: e.final.usage?.completionTokens ?? 0 };
        if (e.final.finishReason === FinishReason.FINISH_REASON_CANCELLED) return usage;
        if (first) await sse.send(chunk({ role: 'assistant', content: '' }, null));
        await sse.send(chunk({}, finishReasons[e.final.finishReason] ?? 'stop'));
        if (includeUsage) {
          await sse.send({ ...chunk({}, null), choices: [], usage: usageBody(usage) });
        }
        sse.done();
        return usage;
      }
    }
    throw new AppError('internal', 'The inference worker ended the stream unexpectedly.', { code: 'stream_interrupted' });
  } catch (err) {
    if (res.destroyed) return undefined; // client gone: nobody to tell
    const reason: unknown = deadline.reason;
    const mapped = deadline.aborted
      ? reason instanceof Deadline && reason.kind === 'idle'
        ? new AppError('timeout', 'The stream was idle for too long.', { code: 'stream_idle_timeout' })
        : new AppError('timeout', 'The request exceeded its time limit.', { code: 'request_timeout' })
      : shutdown.aborted
        ? new AppError('unavailable', 'The gateway is shutting down; retry the request.', { code: 'gateway_draining', retryAfterSeconds: 1 })
        : err instanceof AppError && err.kind !== 'cancelled'
          ? err
          : new AppError('unavailable', 'The inference worker failed during the stream; retry the request.', {
              code: 'stream_interrupted',
              retryAfterSeconds: 1,
            });
    if (!shutdown.aborted) recordFailure(err);
    sse.error(toHttpError(mapped).body);
    return undefined;
  }
}
