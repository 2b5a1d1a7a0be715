/**
 * What every HTTP inference route (chat completions, legacy completions, embeddings) derives from
 * the express request before the transport-neutral steps: the call (request id, logger, arrival
 * time, bearer key, project and endpoint from the path), and a signal that fires when the client
 * closes the connection before the response finished.
 */
import type { Request, Response } from 'express';
import { AppError } from '../../../lib/errors/app-error.js';
import { bearerKey } from '../bearer.js';
import type { ChatCall } from '../chat/core.js';
import type { RequestLocals } from '../request-context.js';

export function httpCall(req: Request, res: Response): ChatCall {
  const locals = res.locals as RequestLocals;
  return {
    requestId: locals.requestId,
    logger: locals.logger,
    arrivedAt: performance.now(),
    apiKey: bearerKey(req),
    project: String(req.params['project']),
    endpoint: String(req.params['endpoint']),
  };
}

/** Aborted (with a `cancelled` AppError) once the client is gone; at once if it already is. */
export function clientGoneSignal(res: Response): AbortSignal {
  const clientGone = new AbortController();
  const gone = (): void => {
    if (!res.writableFinished) clientGone.abort(new AppError('cancelled', 'client closed the connection'));
  };
  res.on('close', gone);
  if (res.closed) gone(); // closed while authentication and admission ran
  return clientGone.signal;
}
