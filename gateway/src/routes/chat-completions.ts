/**
 * POST /{project}/{endpoint}/v1/chat/completions over HTTP: the steps of chat/core.ts with the
 * OpenAI parse (schema + mapping) and the OpenAI renderers (JSON, or SSE with `stream: true`).
 */
import type { Request, Response } from 'express';
import { admitBody, type ParsedGeneration } from './admit-body.js';
import { clientGone, httpCall } from './http-call.js';
import { authenticate, completionMeta, open, requestSignal, settle, type ChatDeps, type SettledUsage } from '../chat/core.js';
import type { UsageTracking } from '../usage/tracker.js';
import { toChatInput } from '../chat/openai-input.js';
import { renderJson } from '../chat/render-json.js';
import { renderSse } from '../chat/render-sse.js';
import { parseChatCompletionRequest } from '../openai/schema.js';
import type { RequestLocals } from '../request-context.js';

export type HttpChatDeps = ChatDeps & { usage: UsageTracking };

export function chatCompletionsHandler(deps: HttpChatDeps) {
  return async (req: Request, res: Response): Promise<void> => {
    const locals = res.locals as RequestLocals;
    const call = httpCall(req, res);

    const who = await authenticate(deps, call);
    // One usage record per authenticated request, whatever happens next.
    const usage = deps.usage.begin(res, who.principal, call.arrivedAt);
    let used: SettledUsage | undefined;
    try {
      // This function stays suspended while a stream is open; the parsed body is not kept here.
      const { admission, headers, stream, includeUsage } = await admitBody(deps, call, who, req, locals, parseChat);
      const signal = requestSignal(deps, call, who, clientGone(res));
      try {
        const generation = await open(deps, call, who, admission, signal);
        usage.firstToken(generation.start);
        try {
          const meta = completionMeta(call.requestId, generation);
          res.setHeader('x-xerotier-worker-id', meta.workerId);
          if (stream) {
            await renderSse(res, generation, meta, signal, { includeUsage, headers });
          } else {
            res.set(headers);
            await renderJson(res, generation, meta, signal);
          }
        } finally {
          generation.release();
        }
      } finally {
        used = settle(deps, call, who, admission, signal);
      }
    } finally {
      usage.end(used ?? { promptTokens: 0, completionTokens: 0 }, used?.completed ?? false);
    }
  };
}

/** The chat body, parsed and mapped; nothing else of it is kept. */
function parseChat(body: unknown): ParsedGeneration<undefined> {
  const request = parseChatCompletionRequest(body);
  return {
    input: toChatInput(request),
    stream: request.stream === true,
    includeUsage: request.stream_options?.include_usage === true,
    extra: undefined,
  };
}
