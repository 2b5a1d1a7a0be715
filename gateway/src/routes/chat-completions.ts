/**
 * POST /{project}/{endpoint}/v1/chat/completions over HTTP: the steps of chat/core.ts with the
 * OpenAI parse (schema + mapping) and the OpenAI renderers (JSON, or SSE with `stream: true`).
 */
import type { Request, Response } from 'express';
import { clientGone, httpCall } from './http-call.js';
import { admit, authenticate, completionMeta, open, requestSignal, settle, type Authorized, type ChatCall, type ChatDeps, type SettledUsage } from '../chat/core.js';
import type { UsageTracking } from '../usage/tracker.js';
import { toChatInput } from '../chat/openai-input.js';
import { renderJson } from '../chat/render-json.js';
import { renderSse } from '../chat/render-sse.js';
import { rateLimitHeaders } from '../openai/rate-limit-headers.js';
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
      // This function stays suspended for as long as a stream is open: the parsed body (the
      // prompt) lives only in `admitChat`, which has returned by then.
      const { admission, headers, stream, includeUsage } = await admitChat(deps, call, who, req, locals);
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

/** Parses the body and admits the request (rate-limit headers set); throws when quota said no. */
async function admitChat(deps: HttpChatDeps, call: ChatCall, who: Authorized, req: Request, locals: RequestLocals) {
  const body = parseChatCompletionRequest(req.body);
  // The raw body is not read again: the request object (which the response keeps for as long
  // as a stream is open) no longer holds the prompt.
  req.body = undefined;
  const admission = await admit(deps, call, who, toChatInput(body));
  // Rate-limit headers once the key is known, on the success and on the error response alike:
  // an error response (sendError) and the stream's 200 (openSse) write them from here, the
  // JSON response sets them when it is rendered (each header once).
  const headers = rateLimitHeaders(admission.limits.requests, admission.limits.tokens);
  locals.headers = headers;
  if (admission.denied) throw admission.denied;
  return { admission, headers, stream: body.stream === true, includeUsage: body.stream_options?.include_usage === true };
}
