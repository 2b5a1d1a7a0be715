/**
 * POST /{project}/{endpoint}/v1/embeddings over HTTP: the steps of embeddings/core.ts with the
 * OpenAI parse and the OpenAI `list` rendering. The endpoint must be of kind embeddings.
 */
import type { Request, Response } from 'express';
import { clientGone, httpCall } from './http-call.js';
import { authenticate, requestSignal } from '../chat/core.js';
import { admitEmbedding, runEmbedding, settleEmbedding, type Embedded } from '../embeddings/core.js';
import { embeddingsBody } from '../embeddings/render-json.js';
import { parseEmbeddingsRequest } from '../openai/embeddings-schema.js';
import { rateLimitHeaders } from '../openai/rate-limit-headers.js';
import type { RequestLocals } from '../request-context.js';
import type { HttpChatDeps } from './chat-completions.js';
import { sendJson } from '../openai/send-json.js';

export function embeddingsHandler(deps: HttpChatDeps) {
  return async (req: Request, res: Response): Promise<void> => {
    const locals = res.locals as RequestLocals;
    const call = httpCall(req, res);
    const who = await authenticate(deps, call, 'embeddings');
    // One usage record per authenticated request, whatever happens next.
    const usage = deps.usage.begin(res, who.principal, call.arrivedAt);
    let result: Embedded | undefined;
    try {
      const body = parseEmbeddingsRequest(req.body);
      const inputs = typeof body.input === 'string' ? [body.input] : body.input;
      const admission = await admitEmbedding(deps, call, who, { inputs, dimensions: body.dimensions ?? undefined });
      locals.headers = rateLimitHeaders(admission.limits.requests, admission.limits.tokens);
      res.set(locals.headers);
      if (admission.denied) throw admission.denied;

      const signal = requestSignal(deps, call, who, clientGone(res));
      try {
        result = await runEmbedding(deps, call, admission, signal);
      } finally {
        signal.dispose();
        settleEmbedding(deps, call, who, admission, result?.promptTokens ?? 0);
      }
      usage.firstToken({ workerId: result.workerId, model: result.model });
      res.setHeader('x-xerotier-worker-id', result.workerId);
      sendJson(res, 200, embeddingsBody(result, body.encoding_format ?? 'float'));
    } finally {
      usage.end({ promptTokens: result?.promptTokens ?? 0, completionTokens: 0 }, result !== undefined);
    }
  };
}
