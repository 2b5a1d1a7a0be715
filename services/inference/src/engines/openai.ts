/**
 * The openai engine: fronts one OpenAI-compatible engine server on the same host (vLLM, SGLang,
 * TGI, llama.cpp server, Ollama) and forwards each generation as a streaming
 * `POST {baseUrl}/chat/completions` (STYLE.md A-16: one file per engine).
 *
 * - Model: `opts.model`, else the first id of `GET {baseUrl}/models` at start(). start() always
 *   probes the upstream (5 s budget) so a dead upstream fails the process at boot, not per request.
 * - Streaming: SSE is parsed here without dependencies ({@link SseParser}): chunk boundaries
 *   anywhere (also inside a UTF-8 sequence), `\n` / `\r\n` / `\r` line ends, `:` comments,
 *   multi-line `data:`. Each content chunk is one `delta` event with tokenCount 1, unless the
 *   chunk carries a running `usage.completion_tokens` (vLLM continuous usage), in which case the
 *   difference is used.
 * - Usage: the upstream's own usage chunk (`stream_options.include_usage`) is authoritative and is
 *   what `final` reports. Upstreams that send no usage fall back to: completion = the sum of delta
 *   tokenCounts (content chunks), prompt = {@link estimatePromptTokens}. That fallback is an
 *   estimate; billing is only exact when the upstream reports usage.
 * - Cancellation: every request runs under an internal AbortController linked to the caller's
 *   signal; aborting the signal, the consumer calling `.return()`, an error or close() all abort
 *   the upstream fetch, which closes the upstream connection so the engine server stops
 *   generating.
 * - Errors: client-visible messages never carry the upstream URL, paths or raw upstream text,
 *   except a sanitized 4xx message (e.g. vLLM's context-length message). Details go to the log.
 * - requestTimeoutMs (default 120 s): longest silence tolerated from the upstream — before the
 *   response headers and between body chunks. It is not a cap on total generation time.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { AppError } from '../../../../lib/errors/app-error.js';
import type { ChatMessage, Engine, EngineEvent, EngineInfo, FinishReason, GenerateParams } from './engine.js';

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
}

export interface OpenAIEngineDeps {
  logger: Logger;
}

export const OPENAI_ENGINE_BACKEND = 'openai-compatible upstream';
const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;
const DEFAULT_START_TIMEOUT_MS = 5_000;
/** After `[DONE]`, how long to wait for the upstream to end the body before dropping the connection. */
const DRAIN_AFTER_DONE_MS = 1_000;
/** Error bodies are read up to this many bytes. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

/**
 * Prompt-token estimate: ceil(chars / 4) + 4 per message (chat-template overhead). Used for
 * countPromptTokens (admission) and when the upstream reports no usage; the upstream's own usage
 * chunk is authoritative for billing.
 */
export function estimatePromptTokens(messages: ChatMessage[]): number {
  return messages.reduce((n, m) => n + 4 + Math.ceil(m.content.length / 4), 0);
}

/** `fp_openai_` + 10 hex chars of sha256(baseUrl + model): stable per upstream and model. */
export function openAIFingerprint(baseUrl: string, model: string): string {
  return `fp_openai_${createHash('sha256').update(`${baseUrl}\n${model}`).digest('hex').slice(0, 10)}`;
}

// ---------------------------------------------------------------------------------------------
// SSE parsing (WHATWG "server-sent events" interpretation, minus reconnection).
// ---------------------------------------------------------------------------------------------

export interface SseEvent {
  /** `event:` field; 'message' when absent. */
  event: string;
  /** `data:` lines joined with '\n'. */
  data: string;
  /** `id:` field of this event, when present (not carried over to later events). */
  id?: string | undefined;
}

/**
 * Incremental SSE parser. Feed it bytes (or already-decoded text) in chunks split anywhere; it
 * returns the events completed by each chunk. `end()` flushes: unlike the spec (which drops an
 * unterminated final event) it dispatches a trailing event whose blank line never came, because
 * some servers close right after `data: [DONE]\n`.
 */
export class SseParser {
  private readonly decoder = new TextDecoder('utf-8');
  private pending = '';
  private skipLeadingLf = false;
  private data = '';
  private hasData = false;
  private eventType = '';
  private id: string | undefined;
  private events: SseEvent[] = [];

  feed(chunk: Uint8Array | string): SseEvent[] {
    let text = typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    if (this.skipLeadingLf && text.length > 0) {
      // A '\r' ended the previous chunk: a '\n' right after it belongs to the same line end.
      if (text.charCodeAt(0) === 10) text = text.slice(1);
      this.skipLeadingLf = false;
    }
    this.scan(text.length === 0 ? this.pending : this.pending + text, false);
    return this.take();
  }

  end(): SseEvent[] {
    const tail = this.decoder.decode();
    this.scan(this.pending + tail, true);
    this.dispatch();
    return this.take();
  }

  private take(): SseEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }

  private scan(buf: string, final: boolean): void {
    let pos = 0;
    let lf = -2;
    let cr = -2;
    const len = buf.length;
    while (pos < len) {
      if (lf !== -1 && lf < pos) lf = buf.indexOf('\n', pos);
      if (cr !== -1 && cr < pos) cr = buf.indexOf('\r', pos);
      let end: number;
      if (lf === -1 && cr === -1) break;
      else if (lf === -1) end = cr;
      else if (cr === -1) end = lf;
      else end = lf < cr ? lf : cr;
      this.line(buf.slice(pos, end));
      if (end === cr) {
        if (end + 1 < len) pos = buf.charCodeAt(end + 1) === 10 ? end + 2 : end + 1;
        else {
          pos = end + 1;
          this.skipLeadingLf = true;
        }
      } else {
        pos = end + 1;
      }
    }
    const rest = pos === 0 ? buf : buf.slice(pos);
    if (final) {
      if (rest.length > 0) this.line(rest);
      this.pending = '';
    } else {
      this.pending = rest;
    }
  }

  private line(line: string): void {
    if (line.length === 0) {
      this.dispatch();
      return;
    }
    if (line.charCodeAt(0) === 58 /* ':' */) return; // comment
    const colon = line.indexOf(':');
    let field: string;
    let value: string;
    if (colon === -1) {
      field = line;
      value = '';
    } else {
      field = line.slice(0, colon);
      value = line.charCodeAt(colon + 1) === 32 ? line.slice(colon + 2) : line.slice(colon + 1);
    }
    switch (field) {
      case 'data':
        this.data = this.hasData ? `${this.data}\n${value}` : value;
        this.hasData = true;
        break;
      case 'event':
        this.eventType = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.id = value;
        break;
      default:
        break; // 'retry' and unknown fields are ignored
    }
  }

  private dispatch(): void {
    if (this.hasData) {
      const event: SseEvent = { event: this.eventType || 'message', data: this.data };
      if (this.id !== undefined) event.id = this.id;
      this.events.push(event);
    }
    this.id = undefined;
    this.data = '';
    this.hasData = false;
    this.eventType = '';
  }
}

// ---------------------------------------------------------------------------------------------
// Upstream error mapping
// ---------------------------------------------------------------------------------------------

const GENERIC_UNAVAILABLE = 'The inference engine is unavailable; retry later.';
const GENERIC_INTERNAL = 'The inference engine failed while generating the response.';
const GENERIC_INVALID = 'The inference engine rejected the request.';

/**
 * Returns the upstream's 4xx message when it is safe to show a client (short, printable, no URLs,
 * file paths, stack traces, hosts or key-like strings); undefined otherwise.
 */
export function safeUpstreamMessage(message: unknown): string | undefined {
  if (typeof message !== 'string') return undefined;
  const text = message.trim();
  if (text.length === 0 || text.length > 500) return undefined;
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(text)) return undefined;
  const unsafe = [
    /[a-z][a-z0-9+.-]*:\/\//i, // any URL
    /(^|[\s"'(=])\/[\w.-]+\/[\w./-]*/, // unix path with at least two segments
    /[a-z]:\\/i, // windows path
    /\b[\w-]+\.(py|js|ts|cpp|cc|c|h|rs|go|so)\b/i, // source files
    /traceback|stack trace|\bat [\w$.<>]+ \(/i,
    /\b(localhost|127\.0\.0\.1|0\.0\.0\.0)\b|\b\d{1,3}(\.\d{1,3}){3}\b|\[[0-9a-f:]+\]/i,
    /bearer\s|api[_-]?key|secret|token=|sk-[a-z0-9]/i,
    /\b[A-Za-z0-9_-]{40,}\b/, // long opaque strings (keys, hashes)
  ];
  return unsafe.some((re) => re.test(text)) ? undefined : text;
}

/** Retry-After as seconds (delta-seconds or HTTP date); undefined when absent or unparsable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.ceil(Number(trimmed));
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

interface UpstreamErrorInfo {
  message?: unknown;
  type?: unknown;
  param?: unknown;
  code?: unknown;
}

/** Reads `{"error":{...}}` (OpenAI, new vLLM), `{"object":"error",...}` (old vLLM) or `{"error":"..."}` (TGI). */
function upstreamErrorInfo(body: unknown): UpstreamErrorInfo | undefined {
  if (!isRecord(body)) return undefined;
  const err = body['error'];
  if (isRecord(err)) return err;
  if (typeof err === 'string') return { message: err, type: body['error_type'] };
  if (body['object'] === 'error') return body;
  if (typeof body['detail'] === 'string') return { message: body['detail'] }; // FastAPI
  return undefined;
}

function mapHttpError(status: number, retryAfter: string | null, body: unknown, logger: Logger, requestId: string): AppError {
  const info = upstreamErrorInfo(body);
  logger.warn({ requestId, upstreamStatus: status, upstreamError: info ?? body }, 'upstream rejected the request');
  if (status === 429 || status === 503) {
    return new AppError('unavailable', 'The inference engine is at capacity; retry later.', {
      code: 'capacity_exceeded',
      retryAfterSeconds: parseRetryAfter(retryAfter),
    });
  }
  if (status === 401 || status === 403 || status === 404 || status === 405) {
    // Wrong upstream key, model or URL: a deployment fault, not the caller's.
    logger.error({ requestId, upstreamStatus: status }, 'upstream refused us: check OPENAI_UPSTREAM_URL / _MODEL / _API_KEY');
    return new AppError('internal', GENERIC_INTERNAL);
  }
  if (status === 408) return new AppError('unavailable', GENERIC_UNAVAILABLE);
  if (status >= 400 && status < 500) {
    const message = safeUpstreamMessage(info?.message);
    const contextOverflow = typeof info?.message === 'string' && /context length|context window|maximum context|too many tokens|exceeds the (model|context)/i.test(info.message);
    const param = typeof info?.param === 'string' && /^[a-z_][a-z0-9_.[\]]{0,63}$/i.test(info.param) ? info.param : undefined;
    return new AppError('invalid_request', message ?? GENERIC_INVALID, {
      code: contextOverflow ? 'context_length_exceeded' : 'invalid_request',
      param: contextOverflow ? (param ?? 'messages') : param,
    });
  }
  if (status === 502 || status === 504) return new AppError('unavailable', GENERIC_UNAVAILABLE);
  return new AppError('internal', GENERIC_INTERNAL);
}

// ---------------------------------------------------------------------------------------------
// The engine
// ---------------------------------------------------------------------------------------------

/** Why the internal controller aborted, when it was not the caller. */
class StallTimeout extends Error {
  override readonly name = 'StallTimeout';
}

function mapFinishReason(reason: unknown): FinishReason {
  return reason === 'length' ? 'length' : 'stop';
}

function toUpstreamMessage(m: ChatMessage): Record<string, string> {
  // `developer` is OpenAI's newer name for `system`; most engine servers only know `system`.
  const out: Record<string, string> = { role: m.role === 'developer' ? 'system' : m.role, content: m.content };
  if (m.name !== undefined) out['name'] = m.name;
  return out;
}

export function createOpenAIEngine(opts: OpenAIEngineOptions, deps: OpenAIEngineDeps): Engine {
  const baseUrl = normalizeBaseUrl(opts.baseUrl);
  const logger = deps.logger.child({ engine: 'openai' });
  const requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const startTimeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  let model = opts.model;
  let started = false;
  let closed = false;
  const inflight = new Set<AbortController>();

  const headers = (accept: string): Record<string, string> => {
    const h: Record<string, string> = { accept };
    if (opts.apiKey) h['authorization'] = `Bearer ${opts.apiKey}`;
    return h;
  };

  async function start(signal?: AbortSignal): Promise<void> {
    const where = redactUrl(baseUrl);
    const timeoutSignal = AbortSignal.timeout(startTimeoutMs);
    const probeSignal = signal ? AbortSignal.any([signal, timeoutSignal]) : timeoutSignal;
    let res: Response;
    let body: unknown;
    try {
      res = await fetch(`${baseUrl}/models`, { headers: headers('application/json'), signal: probeSignal });
      body = await readJson(res);
    } catch (err) {
      if (signal?.aborted) throw signal.reason ?? err;
      const why = timeoutSignal.aborted ? `no answer within ${startTimeoutMs} ms` : describeNetworkError(err);
      throw new Error(`openai engine: upstream ${where} is unreachable (${why}); is the engine server running?`, { cause: err });
    }
    if (res.status === 401 || res.status === 403) {
      throw new Error(`openai engine: upstream ${where} rejected the credentials (HTTP ${res.status}); check OPENAI_UPSTREAM_API_KEY`);
    }
    const ids = res.ok && isRecord(body) && Array.isArray(body['data'])
      ? body['data'].flatMap((m: unknown) => (isRecord(m) && typeof m['id'] === 'string' ? [m['id']] : []))
      : [];
    if (model === undefined) {
      const first = ids[0];
      if (first === undefined) {
        throw new Error(`openai engine: cannot discover the model from ${where}/models (HTTP ${res.status}${res.ok ? ', no models listed' : ''}); set OPENAI_UPSTREAM_MODEL`);
      }
      model = first;
    } else if (!res.ok) {
      logger.warn({ upstream: where, status: res.status }, 'upstream has no usable /models; using the configured model');
    } else if (!ids.includes(model)) {
      logger.warn({ upstream: where, model, served: ids.slice(0, 10) }, 'configured model is not listed by the upstream');
    }
    started = true;
    closed = false;
    logger.info({ upstream: where, model, contextWindow: opts.contextWindow }, 'openai engine ready');
  }

  async function* generate(params: GenerateParams, signal: AbortSignal): AsyncGenerator<EngineEvent> {
    if (closed || model === undefined) throw new AppError('unavailable', 'The inference engine is not ready.');
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(signal.reason);
    if (signal.aborted) controller.abort(signal.reason);
    else signal.addEventListener('abort', onAbort, { once: true });
    inflight.add(controller);
    // One stall timer for the whole request, re-armed before every upstream wait. Time spent
    // suspended at a yield (a slow consumer) is not the upstream's fault: the timer just re-arms.
    let stalled = false;
    let awaitingUpstream = true;
    const stallTimer: NodeJS.Timeout = setTimeout(() => {
      if (!awaitingUpstream) {
        stallTimer.refresh();
        return;
      }
      stalled = true;
      controller.abort(new StallTimeout(`no upstream data for ${requestTimeoutMs} ms`));
    }, requestTimeoutMs);

    let upstreamPrompt: number | undefined;
    let upstreamCompletion: number | undefined;
    let counted = 0;
    let finishReason: FinishReason | undefined;
    let done = false;
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    /** The upstream body was read to its end: nothing to abort. */
    let bodyComplete = false;
    let drainTimer: NodeJS.Timeout | undefined;

    const usage = () => ({
      promptTokens: upstreamPrompt ?? estimatePromptTokens(params.messages),
      completionTokens: upstreamCompletion ?? counted,
    });
    const failure = (err: unknown): AppError => {
      if (stalled) {
        logger.warn({ requestId: params.requestId, timeoutMs: requestTimeoutMs }, 'upstream stalled');
        return new AppError('timeout', 'The inference engine did not respond in time.', { cause: err });
      }
      if (err instanceof AppError) return err;
      if (closed) return new AppError('unavailable', 'The inference engine is shutting down.', { retryable: true });
      logger.warn({ requestId: params.requestId, err: describeNetworkError(err) }, 'upstream request failed');
      return new AppError('unavailable', GENERIC_UNAVAILABLE, { retryable: true });
    };

    try {
      const body: Record<string, unknown> = {
        model,
        messages: params.messages.map(toUpstreamMessage),
        stream: true,
        stream_options: { include_usage: true },
      };
      if (params.maxTokens !== undefined) body['max_tokens'] = params.maxTokens;
      if (params.temperature !== undefined) body['temperature'] = params.temperature;
      if (params.topP !== undefined) body['top_p'] = params.topP;
      if (params.seed !== undefined) body['seed'] = params.seed;
      if (params.stop.length > 0) body['stop'] = params.stop;

      let res: Response;
      try {
        res = await fetch(`${baseUrl}/chat/completions`, {
          method: 'POST',
          headers: {
            ...headers('text/event-stream'),
            'content-type': 'application/json',
            // Lets operators match upstream logs (vLLM --enable-request-id-headers); only if header-safe.
            ...(/^[\x21-\x7e]{1,200}$/.test(params.requestId) ? { 'x-request-id': params.requestId } : {}),
          },
          body: JSON.stringify(body),
          signal: controller.signal,
        });
      } catch (err) {
        if (signal.aborted) {
          yield { type: 'final', finishReason: 'cancelled', usage: usage() };
          return;
        }
        throw failure(err);
      }

      if (!res.ok) {
        let errBody: unknown;
        try {
          errBody = await readJson(res);
        } catch (err) {
          if (signal.aborted) {
            yield { type: 'final', finishReason: 'cancelled', usage: usage() };
            return;
          }
          errBody = undefined;
          if (stalled) throw failure(err);
        }
        throw mapHttpError(res.status, res.headers.get('retry-after'), errBody, logger, params.requestId);
      }

      const contentType = res.headers.get('content-type') ?? '';
      if (!contentType.includes('text/event-stream') && contentType.includes('json')) {
        // The upstream ignored `stream: true`: take the whole completion at once.
        let json: unknown;
        try {
          json = await readJson(res);
        } catch (err) {
          if (signal.aborted) {
            yield { type: 'final', finishReason: 'cancelled', usage: usage() };
            return;
          }
          throw failure(err);
        }
        bodyComplete = true;
        yield* fromNonStreamBody(json, params, logger);
        return;
      }
      if (res.body === null) throw failure(new Error('upstream response has no body'));

      reader = res.body.getReader();
      const parser = new SseParser();
      while (!bodyComplete) {
        let chunk: Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>['read']>>;
        try {
          if (!done) stallTimer.refresh();
          awaitingUpstream = true;
          chunk = await reader.read();
          awaitingUpstream = false;
        } catch (err) {
          if (done) break; // the drain after [DONE] timed out: the answer is complete anyway
          if (signal.aborted) {
            yield { type: 'final', finishReason: 'cancelled', usage: usage() };
            return;
          }
          throw failure(err);
        }
        let events: SseEvent[];
        if (chunk.done) {
          bodyComplete = true;
          events = parser.end();
        } else {
          if (done) continue; // draining the body after [DONE]
          events = parser.feed(chunk.value);
        }
        for (const ev of events) {
          if (done) break;
          const data = ev.data;
          if (data === '[DONE]' || data.trim() === '[DONE]') {
            done = true;
            // Servers end the body right after [DONE]; give them a moment, then drop the connection.
            clearTimeout(stallTimer);
            drainTimer = setTimeout(() => controller.abort(), DRAIN_AFTER_DONE_MS);
            break;
          }
          if (ev.event === 'error') throw streamError(ev.data, logger, params.requestId);
          let obj: unknown;
          try {
            obj = JSON.parse(data);
          } catch {
            logger.warn({ requestId: params.requestId, data: data.slice(0, 200) }, 'upstream sent a malformed stream chunk');
            throw new AppError('internal', GENERIC_INTERNAL);
          }
          if (!isRecord(obj)) continue;
          if (!Array.isArray(obj['choices']) && upstreamErrorInfo(obj) !== undefined) {
            throw streamError(obj, logger, params.requestId);
          }
          const u = obj['usage'];
          let reported: number | undefined;
          if (isRecord(u)) {
            if (typeof u['prompt_tokens'] === 'number') upstreamPrompt = u['prompt_tokens'];
            if (typeof u['completion_tokens'] === 'number') reported = u['completion_tokens'];
          }
          const choices = obj['choices'];
          const choice: unknown = Array.isArray(choices)
            ? choices.find((c: unknown) => isRecord(c) && (c['index'] === 0 || c['index'] === undefined))
            : undefined;
          if (isRecord(choice)) {
            const delta = choice['delta'];
            const content = isRecord(delta) ? delta['content'] : undefined;
            if (typeof content === 'string' && content.length > 0) {
              // A running usage on the chunk itself (vLLM continuous_usage_stats) gives the exact count.
              const tokenCount = reported === undefined ? 1 : Math.max(0, reported - (upstreamCompletion ?? 0));
              counted += tokenCount;
              if (reported !== undefined) upstreamCompletion = reported;
              yield { type: 'delta', text: content, tokenCount };
            }
            const reason = choice['finish_reason'];
            if (typeof reason === 'string' && reason.length > 0) finishReason = mapFinishReason(reason);
          }
          if (reported !== undefined) upstreamCompletion = reported;
        }
      }
      if (!done && finishReason === undefined) {
        // The body ended without [DONE] or a finish_reason: the engine server died mid-answer.
        logger.warn({ requestId: params.requestId }, 'upstream stream ended early');
        throw new AppError('unavailable', 'The inference engine stopped unexpectedly; retry later.', { retryable: true });
      }
      if (upstreamPrompt === undefined) {
        logger.debug({ requestId: params.requestId }, 'upstream sent no usage; reporting estimates');
      }
      yield { type: 'final', finishReason: finishReason ?? 'stop', usage: usage() };
    } finally {
      clearTimeout(stallTimer);
      clearTimeout(drainTimer);
      signal.removeEventListener('abort', onAbort);
      inflight.delete(controller);
      // Early exit (consumer .return(), error, cancel): drop the upstream request so the engine
      // server stops generating. A completely read body keeps its keep-alive connection.
      if (!bodyComplete) {
        controller.abort();
        if (reader !== undefined) reader.cancel().catch(() => {});
      }
    }
  }

  return {
    start,
    ready: () => started && !closed,
    info(): EngineInfo {
      const name = model ?? '';
      return {
        engine: 'openai',
        model: name,
        fingerprint: openAIFingerprint(baseUrl, name),
        contextWindow: opts.contextWindow,
        backend: OPENAI_ENGINE_BACKEND,
      };
    },
    countPromptTokens: async (messages) => estimatePromptTokens(messages),
    generate,
    async close() {
      closed = true;
      started = false;
      for (const c of inflight) c.abort();
      inflight.clear();
    },
  };
}

function fromNonStreamBody(json: unknown, params: GenerateParams, logger: Logger): EngineEvent[] {
  const info = upstreamErrorInfo(json);
  if (!isRecord(json) || (info !== undefined && !Array.isArray(json['choices']))) {
    throw streamError(json, logger, params.requestId);
  }
  const choices = json['choices'];
  const choice = Array.isArray(choices) ? (choices[0] as unknown) : undefined;
  const message = isRecord(choice) ? choice['message'] : undefined;
  const text = isRecord(message) && typeof message['content'] === 'string' ? message['content'] : '';
  const u = json['usage'];
  const completion = isRecord(u) && typeof u['completion_tokens'] === 'number' ? u['completion_tokens'] : text.length > 0 ? 1 : 0;
  const prompt = isRecord(u) && typeof u['prompt_tokens'] === 'number' ? u['prompt_tokens'] : estimatePromptTokens(params.messages);
  const events: EngineEvent[] = [];
  if (text.length > 0) events.push({ type: 'delta', text, tokenCount: completion });
  events.push({
    type: 'final',
    finishReason: mapFinishReason(isRecord(choice) ? choice['finish_reason'] : undefined),
    usage: { promptTokens: prompt, completionTokens: completion },
  });
  return events;
}

function streamError(detail: unknown, logger: Logger, requestId: string): AppError {
  logger.error({ requestId, upstreamError: isRecord(detail) ? (upstreamErrorInfo(detail) ?? detail) : detail }, 'upstream failed mid-stream');
  return new AppError('internal', GENERIC_INTERNAL);
}

/** Reads a (small) body as JSON; undefined when it is not JSON. Throws on network errors. */
async function readJson(res: Response): Promise<unknown> {
  if (res.body === null) return undefined;
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      size += value.byteLength;
      if (size > MAX_ERROR_BODY_BYTES) break;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8'));
  } catch {
    return undefined;
  }
}

function normalizeBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error('openai engine: OPENAI_UPSTREAM_URL is not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error('openai engine: OPENAI_UPSTREAM_URL must be http(s)');
  }
  if (url.username || url.password) {
    throw new Error('openai engine: OPENAI_UPSTREAM_URL must not contain credentials; use OPENAI_UPSTREAM_API_KEY');
  }
  if (url.search) throw new Error('openai engine: OPENAI_UPSTREAM_URL must not contain a query string');
  url.hash = '';
  return url.toString().replace(/\/+$/, '');
}

/** Origin + path only: for operator-facing logs and start() errors (never in client-visible errors). */
function redactUrl(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`.replace(/\/+$/, '');
}

/** Short cause of a fetch failure (undici wraps the socket error in `cause`). */
function describeNetworkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause;
  if (cause instanceof Error) {
    const code = (cause as Error & { code?: unknown }).code;
    return typeof code === 'string' ? code : cause.message;
  }
  return err.name === 'Error' ? err.message : `${err.name}: ${err.message}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
