/** Renders a generation as one OpenAI `chat.completion` JSON response (stream: false). */
import { openAIFinishReason } from '../../../lib/chat/finish-reasons.js';
import type { Response } from 'express';
import { FinishReason } from '../../../gen/xerotier/inference/v1/inference_service.js';
import { AppError } from '../../../lib/errors/app-error.js';
import { streamFailure } from '../failure-policy.js';
import { sendJson } from '../openai/send-json.js';
import type { CompletionMeta, Usage } from './core.js';
import type { Generation } from './generation.js';
import type { RequestSignal } from './request-signal.js';
import { createToolCallAssembly } from '../../../lib/chat/tool-call-assembly.js';
import type { ToolCall } from '../../../lib/chat/tools.js';


export function usageBody(u: Usage) {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: 0 },
  };
}

/** The assistant message: content null when the turn is only tool calls, as OpenAI sends it. */
function responseMessage(text: string, reasoning: string, calls: ToolCall[]) {
  return {
    role: 'assistant',
    content: text === '' && calls.length > 0 ? null : text,
    refusal: null,
    ...(reasoning !== '' ? { reasoning_content: reasoning } : {}),
    ...(calls.length > 0
      ? { tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) }
      : {}),
  };
}

export async function renderJson(res: Response, generation: Generation, meta: CompletionMeta, signal: RequestSignal): Promise<void> {
  let text = '';
  let reasoning = '';
  const toolCalls = createToolCallAssembly();
  try {
    for await (const e of generation.events) {
      if (e.delta) {
        text += e.delta.text;
        reasoning += e.delta.reasoning;
        e.delta.toolCalls.forEach((piece) => toolCalls.add(piece));
      } else if (e.final) {
        if (e.final.finishReason === FinishReason.FINISH_REASON_CANCELLED) throw new AppError('cancelled', 'request cancelled');
        const usage = { promptTokens: e.final.usage?.promptTokens ?? 0, completionTokens: e.final.usage?.completionTokens ?? 0 };
        sendJson(res, 200, {
          id: meta.id,
          object: 'chat.completion',
          created: meta.created,
          model: meta.model,
          choices: [
            {
              index: 0,
              message: responseMessage(text, reasoning, toolCalls.calls()),
              logprobs: null,
              finish_reason: openAIFinishReason(e.final.finishReason),
            },
          ],
          usage: usageBody(usage),
          service_tier: null,
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
