/**
 * Renders a generation as an OpenAI legacy completions SSE stream (stream: true): the same
 * life as a chat stream (render-sse.ts in chat/: 200 headers with the first token, one error
 * event after it, `[DONE]` at the end), with `text_completion` chunks: the echoed prompt first
 * when `echo` is set, then the text pieces, a last chunk with empty text and the finish reason,
 * and with `stream_options.include_usage` one more chunk with `choices: []` and `usage`.
 */
import type { Response } from 'express';
import { FinishReason } from '../../../gen/xerotier/inference/v1/inference_service.js';
import { openAIFinishReason } from '../../../lib/chat/finish-reasons.js';
import { AppError } from '../../../lib/errors/app-error.js';
import { openSse } from '../openai/sse.js';
import type { CompletionMeta } from '../chat/core.js';
import type { Generation } from '../chat/generation.js';
import type { RequestSignal } from '../chat/request-signal.js';
import { failStream, type SseOptions } from '../chat/render-sse.js';
import { completionUsage } from './usage.js';

export async function renderCompletionSse(
  res: Response,
  generation: Generation,
  meta: CompletionMeta,
  signal: RequestSignal,
  options: SseOptions & { echo: string | undefined },
): Promise<void> {
  const sse = openSse(res, options.headers);
  const chunk = (text: string, finishReason: string | null) => ({
    id: meta.id,
    object: 'text_completion',
    created: meta.created,
    model: meta.model,
    system_fingerprint: meta.fingerprint,
    choices: [{ text, index: 0, logprobs: null, finish_reason: finishReason }],
  });
  try {
    if (options.echo !== undefined) await sse.send(chunk(options.echo, null));
    for await (const e of generation.events) {
      if (e.delta) {
        await sse.send(chunk(e.delta.text, null));
      } else if (e.final) {
        if (e.final.finishReason === FinishReason.FINISH_REASON_CANCELLED) return;
        const last = [JSON.stringify(chunk('', openAIFinishReason(e.final.finishReason)))];
        if (options.includeUsage) last.push(JSON.stringify({ ...chunk('', null), choices: [], usage: completionUsage(e.final.usage) }));
        sse.done(...last);
        return;
      }
    }
    throw new AppError('internal', 'The inference worker ended the stream unexpectedly.', { code: 'stream_interrupted' });
  } catch (err) {
    failStream(res, sse, generation, signal, err);
  }
}
