/**
 * Renders a generation as an OpenAI SSE stream (stream: true). The 200 headers go out with the
 * first token (every earlier failure is an ordinary error response); the first chunk carries the
 * role, the last choice chunk the finish reason, an optional usage chunk, then `[DONE]`. A failure
 * after the first token is one error event and no `[DONE]`.
 */
import type { Response } from 'express';
import { FinishReason, type Delta } from '../../../gen/xerotier/inference/v1/inference_service.js';
import { AppError } from '../../../lib/errors/app-error.js';
import { toHttpError } from '../../../lib/errors/http.js';
import { countsAgainstWorker, streamFailure } from '../failure-policy.js';
import { openSse, type SseWriter } from '../openai/sse.js';
import { chatChunk, chunkFrame, framedDelta } from './chunk-frame.js';
import type { CompletionMeta } from './core.js';
import type { Generation } from './generation.js';
import { usageBody } from './render-json.js';
import { openAIFinishReason } from '../../../lib/chat/finish-reasons.js';
import type { RequestSignal } from './request-signal.js';

export interface SseOptions {
  includeUsage: boolean;
  /** Rate-limit headers, sent with the 200. */
  headers: Record<string, string>;
}

/**
 * A worker delta as OpenAI's `delta`: content (always, as OpenAI sends it, unless the piece is
 * only tool calls or reasoning), `reasoning_content`, and `tool_calls` pieces (id, type and name
 * on a call's first piece, argument fragments after).
 */
function deltaBody(delta: Delta): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (delta.text !== '' || (delta.reasoning === '' && delta.toolCalls.length === 0)) body['content'] = delta.text;
  if (delta.reasoning !== '') body['reasoning_content'] = delta.reasoning;
  if (delta.toolCalls.length > 0) {
    body['tool_calls'] = delta.toolCalls.map((c) => ({
      index: c.index,
      ...(c.id !== '' ? { id: c.id, type: 'function' } : {}),
      function: { ...(c.name !== '' ? { name: c.name } : {}), arguments: c.arguments },
    }));
  }
  return body;
}

export async function renderSse(
  res: Response,
  generation: Generation,
  meta: CompletionMeta,
  signal: RequestSignal,
  options: SseOptions,
): Promise<void> {
  const { includeUsage } = options;
  const sse = openSse(res, options.headers);
  // Every choice chunk is the same JSON around its delta: serialised once per stream, only the
  // delta per event.
  const frame = chunkFrame(meta, includeUsage);
  let first = true;
  try {
    for await (const e of generation.events) {
      if (e.delta) {
        const body = deltaBody(e.delta);
        await sse.sendJson(framedDelta(frame, first ? { role: 'assistant', ...body } : body));
        first = false;
      } else if (e.final) {
        if (e.final.finishReason === FinishReason.FINISH_REASON_CANCELLED) return;
        // The last events leave together with `[DONE]` (and with any events still joined in the
        // writer) as the response's last chunk.
        const reason = JSON.stringify(openAIFinishReason(e.final.finishReason));
        const last = [`${frame.head}{}${frame.tail.replace('"finish_reason":null', `"finish_reason":${reason}`)}`];
        if (first) last.unshift(framedDelta(frame, { role: 'assistant', content: '' }));
        if (includeUsage) {
          const usage = { promptTokens: e.final.usage?.promptTokens ?? 0, completionTokens: e.final.usage?.completionTokens ?? 0 };
          last.push(JSON.stringify({ ...chatChunk(meta, {}, null, includeUsage), choices: [], usage: usageBody(usage) }));
        }
        sse.done(...last);
        return;
      }
    }
    throw new AppError('internal', 'The inference worker ended the stream unexpectedly.', { code: 'stream_interrupted' });
  } catch (err) {
    failStream(res, sse, generation, signal, err);
  }
}

/**
 * Ends a stream that failed after its headers: exactly one error event (no `[DONE]`), and the
 * failure counted against the worker when it was the worker's fault. Nothing when the client left.
 */
export function failStream(res: Response, sse: Pick<SseWriter, 'error'>, generation: Generation, signal: RequestSignal, err: unknown): void {
  if (res.destroyed) return; // client gone: nobody to tell
  const reason = signal.reason();
  if (countsAgainstWorker(reason)) generation.worker.breaker.recordFailure(err);
  sse.error(toHttpError(streamFailure(reason, err)).body);
}
