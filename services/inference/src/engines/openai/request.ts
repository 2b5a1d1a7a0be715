/**
 * The upstream request: where it goes (a normalized base URL) and what it says (an OpenAI
 * `POST /chat/completions` body for our GenerateParams, or a `POST /completions` body for a raw
 * prompt, always streaming with usage). Tools, tool calls in the history, response_format,
 * penalties, logit_bias, reasoning_effort and user go through as the client sent them; the
 * upstream honours or refuses them.
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

function toUpstreamMessage(m: ChatMessage): Record<string, unknown> {
  // `developer` is OpenAI's newer name for `system`; most engine servers only know `system`.
  const out: Record<string, unknown> = { role: m.role === 'developer' ? 'system' : m.role, content: m.content };
  if (m.name !== undefined) out['name'] = m.name;
  if (m.toolCalls !== undefined && m.toolCalls.length > 0) {
    out['tool_calls'] = m.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
    if (m.content === '') out['content'] = null;
  }
  if (m.toolCallId !== undefined) out['tool_call_id'] = m.toolCallId;
  return out;
}

/** Tools, output format and the other optional parameters, in OpenAI's spelling (unset ones omitted). */
function optionalParams(params: GenerateParams): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (params.tools !== undefined && params.tools.length > 0) {
    body['tools'] = params.tools.map((t) => ({
      type: 'function',
      function: { name: t.name, description: t.description, parameters: t.parameters, ...(t.strict ? { strict: true } : {}) },
    }));
    const choice = params.toolChoice;
    if (choice !== undefined) body['tool_choice'] = choice.mode === 'named' ? { type: 'function', function: { name: choice.name } } : choice.mode;
  }
  if (params.parallelToolCalls !== undefined) body['parallel_tool_calls'] = params.parallelToolCalls;
  const format = params.responseFormat;
  if (format !== undefined) {
    body['response_format'] = format.type === 'json_schema'
      ? { type: 'json_schema', json_schema: { name: format.name, schema: format.schema, strict: format.strict } }
      : { type: format.type };
  }
  if (params.presencePenalty !== undefined) body['presence_penalty'] = params.presencePenalty;
  if (params.frequencyPenalty !== undefined) body['frequency_penalty'] = params.frequencyPenalty;
  if (params.logitBias !== undefined) body['logit_bias'] = params.logitBias;
  if (params.reasoningEffort !== undefined) body['reasoning_effort'] = params.reasoningEffort;
  if (params.user !== undefined) body['user'] = params.user;
  return body;
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
  return { ...body, ...optionalParams(params) };
}
