/**
 * The openai engine: fronts one OpenAI-compatible engine server on the same host (vLLM, SGLang,
 * TGI, llama.cpp server, Ollama) and forwards each generation as a streaming
 * `POST {baseUrl}/chat/completions` (a legacy completion's raw prompt as `POST {baseUrl}/completions`,
 * embeddings as `POST {baseUrl}/embeddings`). The pieces, one file each in this folder:
 *
 * - request.ts: the base URL and the request body (`developer` sent as `system`);
 * - upstream-http.ts: the HTTP transport (node:http/https, one keep-alive pool, Node streams);
 * - upstream-call.ts: one request's lifetime, its stall timer and the one cancel path;
 * - stream-reader.ts: SSE (sse.ts, on eventsource-parser) or a JSON answer → engine events, usage;
 * - embeddings.ts: the embeddings pass-through;
 * - upstream-errors.ts: HTTP status and error bodies → AppError, without leaking the upstream.
 *
 * Model: `opts.model`, else the first id of `GET {baseUrl}/models` at start(). start() always
 * probes the upstream (5 s budget) so a dead upstream fails the process at boot, not per request.
 * requestTimeoutMs (default 120 s) is the longest silence tolerated from the upstream — before
 * the response headers and between body chunks — not a cap on total generation time.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { AppError } from '../../../../../lib/errors/app-error.js';
import type { Engine, EngineEvent, EngineInfo, GenerateParams, OptionalParam } from '../engine.js';
import { estimatePromptTokens, estimateTextTokens, toolsAsText } from '../../../../../lib/chat/prompt-tokens.js';
import { upstreamEmbeddings } from './embeddings.js';
import { isRecord, readJson } from './json.js';
import { chatCompletionBody, completionPath, normalizeBaseUrl, redactUrl, requestIdHeader, upstreamHeaders } from './request.js';
import { fromJsonAnswer, readChatStream, UsageTally } from './stream-reader.js';
import { openUpstreamCall, type UpstreamCall } from './upstream-call.js';
import { createUpstreamHttp, type UpstreamResponse } from './upstream-http.js';
import { describeNetworkError, GENERIC_UNAVAILABLE, httpError } from './upstream-errors.js';

export interface OpenAIEngineOptions {
  /** Base URL ending in `/v1` (e.g. `http://127.0.0.1:8000/v1`). No credentials in it. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer …` when set (vLLM `--api-key`, etc.). */
  apiKey?: string | undefined;
  /** Upstream model id; undefined = the first id of `GET /models`, discovered at start(). */
  model?: string | undefined;
  contextWindow: number;
  /** Longest upstream silence (headers, then between chunks) before a request fails. Default 120 000. */
  requestTimeoutMs?: number | undefined;
  /** Budget of the start() probe (`GET /models`). Default 5 000. */
  startTimeoutMs?: number | undefined;
  /** Most connections held to the upstream (the worker's capacity). Default: no limit. */
  maxConnections?: number | undefined;
}

export interface OpenAIEngineDeps {
  logger: Logger;
}

export const OPENAI_ENGINE_BACKEND = 'openai-compatible upstream';
const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;
const DEFAULT_START_TIMEOUT_MS = 5_000;

/** `fp_openai_` + 10 hex chars of sha256(baseUrl + model): stable per upstream and model. */
export function openAIFingerprint(baseUrl: string, model: string): string {
  return `fp_openai_${createHash('sha256').update(`${baseUrl}\n${model}`).digest('hex').slice(0, 10)}`;
}

export function createOpenAIEngine(opts: OpenAIEngineOptions, deps: OpenAIEngineDeps): Engine {
  const baseUrl = normalizeBaseUrl(opts.baseUrl);
  const logger = deps.logger.child({ engine: 'openai' });
  const requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const startTimeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const upstream = createUpstreamHttp(baseUrl, { maxSockets: opts.maxConnections ?? Infinity });
  let model = opts.model;
  // Computed when the model is known, not per info() call (every generation and status asks).
  let fingerprint = openAIFingerprint(baseUrl, model ?? '');
  let started = false;
  let closed = false;
  const inflight = new Set<UpstreamCall>();

  async function start(signal?: AbortSignal): Promise<void> {
    const where = redactUrl(baseUrl);
    const timeoutSignal = AbortSignal.timeout(startTimeoutMs);
    const probeSignal = signal ? AbortSignal.any([signal, timeoutSignal]) : timeoutSignal;
    let res: UpstreamResponse;
    let body: unknown;
    try {
      res = await upstream.request({ method: 'GET', path: '/models', headers: upstreamHeaders('application/json', opts.apiKey), signal: probeSignal });
      body = await readJson(res.body);
    } catch (err) {
      if (signal?.aborted) throw signal.reason ?? err;
      const why = timeoutSignal.aborted ? `no answer within ${startTimeoutMs} ms` : describeNetworkError(err);
      throw new Error(`openai engine: upstream ${where} is unreachable (${why}); is the engine server running?`, { cause: err });
    }
    const ok = res.status >= 200 && res.status < 300;
    if (res.status === 401 || res.status === 403) {
      throw new Error(`openai engine: upstream ${where} rejected the credentials (HTTP ${res.status}); check OPENAI_UPSTREAM_API_KEY`);
    }
    const ids = ok && isRecord(body) && Array.isArray(body['data'])
      ? body['data'].flatMap((m: unknown) => (isRecord(m) && typeof m['id'] === 'string' ? [m['id']] : []))
      : [];
    if (model === undefined) {
      const first = ids[0];
      if (first === undefined) {
        throw new Error(`openai engine: cannot discover the model from ${where}/models (HTTP ${res.status}${ok ? ', no models listed' : ''}); set OPENAI_UPSTREAM_MODEL`);
      }
      model = first;
      fingerprint = openAIFingerprint(baseUrl, model);
    } else if (!ok) {
      logger.warn({ upstream: where, status: res.status }, 'upstream has no usable /models; using the configured model');
    } else if (!ids.includes(model)) {
      logger.warn({ upstream: where, model, served: ids.slice(0, 10) }, 'configured model is not listed by the upstream');
    }
    started = true;
    closed = false;
    logger.info({ upstream: where, model, contextWindow: opts.contextWindow }, 'openai engine ready');
  }

  /** Any failure of a call as an AppError (a cancelled call never gets here). */
  function failure(err: unknown, call: UpstreamCall, requestId: string): AppError {
    if (call.stalled) {
      logger.warn({ requestId, timeoutMs: requestTimeoutMs }, 'upstream stalled');
      return new AppError('timeout', 'The inference engine did not respond in time.', { cause: err });
    }
    if (err instanceof AppError) return err;
    if (closed) return new AppError('unavailable', 'The inference engine is shutting down.', { retryable: true });
    logger.warn({ requestId, err: describeNetworkError(err) }, 'upstream request failed');
    return new AppError('unavailable', GENERIC_UNAVAILABLE, { retryable: true });
  }

  /** The AppError of a non-2xx answer; an unreadable error body is mapped from the status alone. */
  async function rejection(res: UpstreamResponse, call: UpstreamCall, requestId: string): Promise<AppError> {
    let body: unknown;
    try {
      body = await call.wait(readJson(res.body));
    } catch (err) {
      if (call.stalled || call.signal.aborted) throw err;
    }
    return httpError(res.status, res.headers['retry-after'] ?? null, body, logger, requestId);
  }

  async function* generate(params: GenerateParams, signal: AbortSignal): AsyncGenerator<EngineEvent> {
    if (closed || model === undefined) throw new AppError('unavailable', 'The inference engine is not ready.');
    const call = openUpstreamCall(signal, requestTimeoutMs);
    inflight.add(call);
    const tally = new UsageTally(params);
    try {
      const res = await call.wait(
        upstream.request({
          method: 'POST',
          path: completionPath(params),
          headers: {
            ...upstreamHeaders('text/event-stream', opts.apiKey),
            'content-type': 'application/json',
            ...requestIdHeader(params.requestId),
          },
          body: JSON.stringify(chatCompletionBody(model, params)),
          signal: call.signal,
        }),
      );
      if (res.status < 200 || res.status >= 300) throw await rejection(res, call, params.requestId);
      const contentType = res.headers['content-type'] ?? '';
      if (!contentType.includes('text/event-stream') && contentType.includes('json')) {
        // The upstream ignored `stream: true`: take the whole completion at once.
        const json = await call.wait(readJson(res.body));
        call.complete();
        yield* fromJsonAnswer(json, params, logger);
        return;
      }
      const finishReason = yield* readChatStream(res.body, call, tally, logger, params.requestId);
      yield { type: 'final', finishReason, usage: tally.usage() };
    } catch (err) {
      // The one cancel path: whatever was in flight when the caller's signal aborted.
      if (signal.aborted) {
        yield { type: 'final', finishReason: 'cancelled', usage: tally.usage() };
        return;
      }
      throw failure(err, call, params.requestId);
    } finally {
      inflight.delete(call);
      call.close(); // drops the upstream request unless its body was read to the end
    }
  }

  return {
    start,
    ready: () => started && !closed,
    // Everything else goes through to the upstream; token log probabilities are not relayed.
    unsupported: new Set<OptionalParam>(['logprobs', 'top_logprobs']),
    info(): EngineInfo {
      return {
        engine: 'openai',
        model: model ?? '',
        fingerprint,
        contextWindow: opts.contextWindow,
        backend: OPENAI_ENGINE_BACKEND,
      };
    },
    // No tokenizer here: admission counts with the shared estimate; the upstream's usage settles.
    countPromptTokens: async (messages, tools = [], prompt) =>
      prompt === undefined ? estimatePromptTokens([...messages, ...toolsAsText(tools)]) : estimateTextTokens(prompt),
    generate,
    async embed(params, signal) {
      if (closed || model === undefined) throw new AppError('unavailable', 'The inference engine is not ready.');
      const call = openUpstreamCall(signal, requestTimeoutMs);
      inflight.add(call);
      try {
        return await upstreamEmbeddings({ upstream, apiKey: opts.apiKey, model, call, logger }, params);
      } catch (err) {
        if (signal.aborted) throw signal.reason ?? err;
        throw failure(err, call, params.requestId);
      } finally {
        inflight.delete(call);
        call.close();
      }
    },
    async close() {
      closed = true;
      started = false;
      for (const call of inflight) call.abort();
      inflight.clear();
      upstream.closeIdle();
    },
  };
}
