/**
 * The embeddings pass-through: one `POST {baseUrl}/embeddings` per request with all inputs,
 * `encoding_format: "float"` (every OpenAI-compatible server speaks it; base64 is the gateway's
 * rendering, not the upstream's) and `dimensions` when asked (the upstream honours or refuses
 * it; a refusal is a 400 naming its param). Vectors come back in input order whatever order the
 * upstream listed them in, normalized like every engine's. Usage: the upstream's
 * `prompt_tokens`, else the shared estimate.
 */
import type { Logger } from 'pino';
import { estimateTextTokens } from '../../../../../lib/chat/prompt-tokens.js';
import { AppError } from '../../../../../lib/errors/app-error.js';
import type { EmbedParams, EmbedResult } from '../engine.js';
import { normalize } from '../vector.js';
import { isRecord, readJson } from './json.js';
import { requestIdHeader, upstreamHeaders } from './request.js';
import type { UpstreamCall } from './upstream-call.js';
import { readText, type UpstreamHttp } from './upstream-http.js';
import { GENERIC_INTERNAL, httpError } from './upstream-errors.js';

export interface EmbeddingsCall {
  upstream: UpstreamHttp;
  apiKey: string | undefined;
  model: string;
  call: UpstreamCall;
  logger: Logger;
}

export async function upstreamEmbeddings(at: EmbeddingsCall, params: EmbedParams): Promise<EmbedResult> {
  const { call, logger } = at;
  const body: Record<string, unknown> = { model: at.model, input: params.inputs, encoding_format: 'float' };
  if (params.dimensions !== undefined) body['dimensions'] = params.dimensions;
  const res = await call.wait(
    at.upstream.request({
      method: 'POST',
      path: '/embeddings',
      headers: { ...upstreamHeaders('application/json', at.apiKey), 'content-type': 'application/json', ...requestIdHeader(params.requestId) },
      body: JSON.stringify(body),
      signal: call.signal,
    }),
  );
  if (res.status < 200 || res.status >= 300) {
    const error = await call.wait(readJson(res.body)).catch(() => undefined);
    throw httpError(res.status, res.headers['retry-after'] ?? null, error, logger, params.requestId);
  }
  // Vectors make large bodies (thousands of floats per input): read whole, not through readJson's cap.
  const text = await call.wait(readText(res.body));
  call.complete();
  return parseAnswer(text, params, logger);
}

function parseAnswer(text: string, params: EmbedParams, logger: Logger): EmbedResult {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const data = isRecord(json) ? json['data'] : undefined;
  const embeddings: Array<number[] | undefined> = new Array<number[] | undefined>(params.inputs.length).fill(undefined);
  if (Array.isArray(data)) {
    data.forEach((item: unknown, position) => {
      if (!isRecord(item)) return;
      const index = typeof item['index'] === 'number' ? item['index'] : position;
      const vector = item['embedding'];
      if (Array.isArray(vector) && vector.every((v) => typeof v === 'number') && index >= 0 && index < embeddings.length) {
        embeddings[index] = normalize(vector as number[]);
      }
    });
  }
  if (embeddings.some((e) => e === undefined)) {
    logger.warn({ requestId: params.requestId, answer: text.slice(0, 200) }, 'upstream embeddings answer is malformed');
    throw new AppError('internal', GENERIC_INTERNAL);
  }
  const usage = isRecord(json) ? json['usage'] : undefined;
  const reported = isRecord(usage) && typeof usage['prompt_tokens'] === 'number' ? usage['prompt_tokens'] : undefined;
  return {
    embeddings: embeddings as number[][],
    promptTokens: reported ?? params.inputs.reduce((n, input) => n + estimateTextTokens(input), 0),
  };
}
