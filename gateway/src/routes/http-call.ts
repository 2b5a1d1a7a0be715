/**
 * What every HTTP inference route (chat completions, legacy completions, embeddings) derives from
 * the express request before the transport-neutral steps: the call (request id, logger, arrival
 * time, bearer key, project and endpoint from the path), and the client closing the connection
 * before the response finished.
 */
import type { Request, Response } from 'express';
import { AppError } from '../../../lib/errors/app-error.js';
import { bearerKey } from '../bearer.js';
import type { ChatCall } from '../chat/core.js';
import type { Departure } from '../chat/request-signal.js';
import type { RequestLocals } from '../request-context.js';

export function httpCall(req: Request, res: Response): ChatCall {
  const locals = res.locals as RequestLocals;
  return {
    requestId: locals.requestId,
    // Read through: the request's logger is made on first use (request-log.ts), and most
    // requests never log.
    get logger() {
      return locals.logger;
    },
    arrivedAt: performance.now(),
    apiKey: bearerKey(req),
    project: String(req.params['project']),
    endpoint: String(req.params['endpoint']),
  };
}

/**
 * The client leaving before the response finished (with a `cancelled` AppError); reported at once
 * if it already left while authentication and admission ran. A `close` listener on the response,
 * not an AbortController per request.
 */
export function clientGone(res: Response): Departure {
  return {
    watch(onGone) {
      const gone = (): void => {
        if (!res.writableFinished) onGone(new AppError('cancelled', 'client closed the connection'));
      };
      if (res.closed) {
        gone();
        return () => undefined;
      }
      res.on('close', gone);
      return () => res.off('close', gone);
    },
  };
}
