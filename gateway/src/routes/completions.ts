/**
 * POST /{project}/{endpoint}/v1/completions over HTTP (OpenAI's legacy completions): the steps
 * of chat/core.ts — a completion is a generation with a raw prompt instead of messages, on a
 * chat endpoint, with the same quota, worker choice, breakers and failure policy — with the
 * completions parse and the `text_completion` renderers (JSON, or SSE with `stream: true`).
 */
import type { Request, Response } from 'express';
import { admitBody, type ParsedGeneration } from './admit-body.js';
import { clientGone, httpCall } from './http-call.js';
import { authenticate, completionMeta, open, requestSignal, settle, type SettledUsage } from '../chat/core.js';
import { promptText, toCompletionInput } from '../completions/input.js';
import { renderCompletionJson } from '../completions/render-json.js';
import { renderCompletionSse } from '../completions/render-sse.js';
import { parseCompletionsRequest } from '../openai/completions-schema.js';
import type { RequestLocals } from '../request-context.js';
import type { HttpChatDeps } from './chat-completions.js';

export function completionsHandler(deps: HttpChatDeps) {
  return async (req: Request, res: Response): Promise<void> => {
    const locals = res.locals as RequestLocals;
    const call = httpCall(req, res);

    const who = await authenticate(deps, call, 'chat');
    // One usage record per authenticated request, whatever happens next.
    const usage = deps.usage.begin(res, who.principal, call.arrivedAt);
    let used: SettledUsage | undefined;
    try {
      // This function stays suspended while a stream is open; the parsed body is not kept here.
      const { admission, headers, stream, includeUsage, extra: echo } = await admitBody(deps, call, who, req, locals, parseCompletion);
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
            res.set(headers);
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

/** The completions body, parsed and mapped; its extra is the prompt to echo, when asked for. */
function parseCompletion(body: unknown): ParsedGeneration<string | undefined> {
  const request = parseCompletionsRequest(body);
  return {
    input: toCompletionInput(request),
    stream: request.stream === true,
    includeUsage: request.stream_options?.include_usage === true,
    extra: request.echo === true ? promptText(request) : undefined,
  };
}
