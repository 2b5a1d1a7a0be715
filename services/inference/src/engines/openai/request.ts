/**
 * The upstream request: where it goes (a normalized base URL) and what it says (an OpenAI
 * `POST /chat/completions` body for our GenerateParams, or a `POST /completions` body for a raw
 * prompt, always streaming with usage).
 */
import type { ChatMessage, GenerateParams } from '../engine.js';

/** `http(s)://host[:port]/path` without credentials, query, fragment or trailing slash. */
export function normalizeBaseUrl(raw: string): string {
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
export function redactUrl(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`.replace(/\/+$/, '');
}

export function upstreamHeaders(accept: string, apiKey: string | undefined): Record<string, string> {
  const h: Record<string, string> = { accept };
  if (apiKey) h['authorization'] = `Bearer ${apiKey}`;
  return h;
}

/** Lets operators match upstream logs (vLLM --enable-request-id-headers); only if header-safe. */
export function requestIdHeader(requestId: string): Record<string, string> {
  return /^[\x21-\x7e]{1,200}$/.test(requestId) ? { 'x-request-id': requestId } : {};
}

function toUpstreamMessage(m: ChatMessage): Record<string, string> {
  // `developer` is OpenAI's newer name for `system`; most engine servers only know `system`.
  const out: Record<string, string> = { role: m.role === 'developer' ? 'system' : m.role, content: m.content };
  if (m.name !== undefined) out['name'] = m.name;
  return out;
}

/** The upstream path: legacy completions for a raw prompt, chat completions otherwise. */
export function completionPath(params: GenerateParams): string {
  return params.prompt === undefined ? '/chat/completions' : '/completions';
}

/** The streaming request body; unset sampling parameters and an empty stop list are omitted. */
export function chatCompletionBody(model: string, params: GenerateParams): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model,
    ...(params.prompt === undefined ? { messages: params.messages.map(toUpstreamMessage) } : { prompt: params.prompt }),
    stream: true,
    stream_options: { include_usage: true },
  };
  if (params.maxTokens !== undefined) body['max_tokens'] = params.maxTokens;
  if (params.temperature !== undefined) body['temperature'] = params.temperature;
  if (params.topP !== undefined) body['top_p'] = params.topP;
  if (params.seed !== undefined) body['seed'] = params.seed;
  if (params.stop.length > 0) body['stop'] = params.stop;
  return body;
}
