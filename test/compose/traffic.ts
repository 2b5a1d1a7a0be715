/**
 * HTTP traffic against the compose stack's gateway for test/compose/compose.suite.ts: one timed
 * chat request with status and headers (fetch), and a streaming request that records how far it
 * got (official openai SDK), so a fault can be judged per request.
 */
import OpenAI from 'openai';

export interface Answer {
  status: number;
  ms: number;
  retryAfter: string | null;
  code: string | undefined;
  body: unknown;
  /** X-Request-ID and X-Xerotier-Worker-ID of the answer ('' when absent). */
  requestId: string;
  workerId: string;
}

/** One non-streaming chat completion; `status` 0 means no HTTP answer (connection failed). */
export async function chat(gatewayUrl: string, key: string, path = '/demo/chat/v1', maxTokens = 4): Promise<Answer> {
  const started = performance.now();
  try {
    const res = await fetch(`${gatewayUrl}${path}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', max_tokens: maxTokens, messages: [{ role: 'user', content: 'Hello' }] }),
      signal: AbortSignal.timeout(60_000),
    });
    const body: unknown = await res.json().catch(() => undefined);
    const code = (body as { error?: { code?: string } } | undefined)?.error?.code;
    return {
      status: res.status,
      ms: performance.now() - started,
      retryAfter: res.headers.get('retry-after'),
      code,
      body,
      requestId: res.headers.get('x-request-id') ?? '',
      workerId: res.headers.get('x-xerotier-worker-id') ?? '',
    };
  } catch (err) {
    const code = String((err as Error).cause ?? err);
    return { status: 0, ms: performance.now() - started, retryAfter: null, code, body: undefined, requestId: '', workerId: '' };
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** How a streaming request ended, from the client's side. */
export type StreamOutcome =
  | 'completed' // every chunk and the usage chunk arrived
  | 'refused' // an HTTP error answer before any chunk (status in `status`)
  | 'not-connected' // no HTTP answer at all: the request never reached a gateway
  | 'broken'; // the stream had started and did not finish: a lost request

export interface StreamResult {
  outcome: StreamOutcome;
  status?: number | undefined;
  code?: string | null | undefined;
  retryAfter?: string | null | undefined;
  ms: number;
}

export function client(gatewayUrl: string, key: string): OpenAI {
  return new OpenAI({ baseURL: `${gatewayUrl}/demo/chat/v1`, apiKey: key, maxRetries: 0, timeout: 60_000 });
}

export async function stream(openai: OpenAI, maxTokens: number): Promise<StreamResult> {
  const started = performance.now();
  const ms = () => performance.now() - started;
  let response;
  try {
    response = await openai.chat.completions.create({
      model: 'm',
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: maxTokens,
      messages: [{ role: 'user', content: 'Count' }],
    });
  } catch (err) {
    if (err instanceof OpenAI.APIConnectionError) return { outcome: 'not-connected', ms: ms() };
    if (err instanceof OpenAI.APIError) {
      return { outcome: 'refused', status: err.status, code: err.code, retryAfter: err.headers?.get('retry-after') ?? null, ms: ms() };
    }
    throw err;
  }
  try {
    let usage = false;
    for await (const chunk of response) if (chunk.usage) usage = true;
    return { outcome: usage ? 'completed' : 'broken', ms: ms() };
  } catch {
    return { outcome: 'broken', ms: ms() };
  }
}
