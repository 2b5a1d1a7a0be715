/**
 * POST /{project}/{endpoint}/v1/completions over HTTP (OpenAI's legacy completions): the steps
 * of chat/core.ts — a completion is a generation with a raw prompt instead of messages, on a
 * chat endpoint, with the same quota, worker choice, breakers and failure policy — with the
 * completions parse and the `text_completion` renderers (JSON, or SSE with `stream: true`).
 */
import type { Request, Response } from 'express';
import { clientGone, httpCall } from './http-call.js';
import { admit, authenticate, completionMeta, open, requestSignal, settle, type Authorized, type ChatCall, type SettledUsage } from '../chat/core.js';
import { promptText, toCompletionInput } from '../completions/input.js';
import { renderCompletionJson } from '../completions/render-json.js';
import { renderCompletionSse } from '../completions/render-sse.js';
import { parseCompletionsRequest } from '../openai/completions-schema.js';
import { rateLimitHeaders } from '../openai/rate-limit-headers.js';
import type { RequestLocals } from '../request-context.js';
import type { HttpChatDeps } from './chat-completions.js';

export function completionsHandler(deps: HttpChatDeps) {
  return async (req: Request, res: Response): Promise<void> => {
    const call = httpCall(req, res);

    const who = await authenticate(deps, call, 'chat');
    // One usage record per authenticated request, whatever happens next.
    const usage = deps.usage.begin(res, who.principal, call.arrivedAt);
    let used: SettledUsage | undefined;
    try {
      // This function stays suspended for as long as a stream is open: the parsed body (the
      // prompt) lives only in `admitCompletion`, which has returned by then.
      const { admission, headers, stream, includeUsage, echo } = await admitCompletion(deps, call, who, req, res);
      const signal = requestSignal(deps, call, who, clientGone(res));
      try {
        const generation = await open(deps, call, who, admission, signal);
        usage.firstToken(generation.start);
        try {
          const meta = { ...completionMeta(call.requestId, generation), id: `cmpl-${call.requestId.replace(/^req_/, '')}` };
          res.setHeader('x-xerotier-worker-id', meta.workerId);
          if (stream) {
            await renderCompletionSse(res, generation, meta, signal, { includeUsage, headers, echo });
          } else {
            await renderCompletionJson(res, generation, meta, signal, echo);
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
async function admitCompletion(deps: HttpChatDeps, call: ChatCall, who: Authorized, req: Request, res: Response) {
  const body = parseCompletionsRequest(req.body);
  // The raw body is not read again: the request object (which the response keeps for as long
  // as a stream is open) no longer holds the prompt.
  req.body = undefined;
  const admission = await admit(deps, call, who, toCompletionInput(body));
  const headers = rateLimitHeaders(admission.limits.requests, admission.limits.tokens);
  (res.locals as RequestLocals).headers = headers;
  res.set(headers);
  if (admission.denied) throw admission.denied;
  return {
    admission,
    headers,
    stream: body.stream === true,
    includeUsage: body.stream_options?.include_usage === true,
    // The prompt again only when the caller asked for it back.
    echo: body.echo === true ? promptText(body) : undefined,
  };
}
