/** Renders a generation as one OpenAI `text_completion` JSON response (stream: false). */
import type { Response } from 'express';
import { openAIFinishReason } from '../../../lib/chat/finish-reasons.js';
import { FinishReason } from '../../../gen/xerotier/inference/v1/inference_service.js';
import { AppError } from '../../../lib/errors/app-error.js';
import { streamFailure } from '../failure-policy.js';
import type { CompletionMeta } from '../chat/core.js';
import type { Generation } from '../chat/generation.js';
import type { RequestSignal } from '../chat/request-signal.js';
import { completionUsage } from './usage.js';
import { sendJson } from '../openai/send-json.js';

/** `echo`: the prompt, prepended to the generated text; undefined = no echo. */
export async function renderCompletionJson(
  res: Response,
  generation: Generation,
  meta: CompletionMeta,
  signal: RequestSignal,
  echo: string | undefined,
): Promise<void> {
  let text = echo ?? '';
  try {
    for await (const e of generation.events) {
      if (e.delta) {
        text += e.delta.text;
      } else if (e.final) {
        if (e.final.finishReason === FinishReason.FINISH_REASON_CANCELLED) throw new AppError('cancelled', 'request cancelled');
        sendJson(res, 200, {
          id: meta.id,
          object: 'text_completion',
          created: meta.created,
          model: meta.model,
          choices: [{ text, index: 0, logprobs: null, finish_reason: openAIFinishReason(e.final.finishReason) }],
          usage: completionUsage(e.final.usage),
          system_fingerprint: meta.fingerprint,
        });
        return;
      }
    }
  } catch (err) {
    // Nothing was sent yet: the failure is an ordinary error response with its status.
    throw streamFailure(signal.reason(), err);
  }
  throw new AppError('internal', 'the worker ended the stream without a result');
}
