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
import type { Departure, GoneWatcher } from '../chat/request-signal.js';
import type { RequestLocals } from '../request-context.js';
import type { Logger } from 'pino';

export function httpCall(req: Request, res: Response): ChatCall {
  return new HttpCall(res.locals as RequestLocals, bearerKey(req), String(req.params['project']), String(req.params['endpoint']));
}

/**
 * The call of one HTTP request. Its logger is read through to the request's (made on first use,
 * request-log.ts; most requests never log) by an accessor on this class's prototype: an object
 * literal's accessor is a fresh closure per request, which gives every object a hidden class of
 * its own in V8's old generation and keeps what it captures past young-generation collections.
 */
class HttpCall implements ChatCall {
  readonly requestId: string;
  readonly arrivedAt = performance.now();
  readonly #locals: RequestLocals;

  constructor(
    locals: RequestLocals,
    readonly apiKey: string,
    readonly project: string,
    readonly endpoint: string,
  ) {
    this.#locals = locals;
    this.requestId = locals.requestId;
  }

  get logger(): Logger {
    return this.#locals.logger;
  }
}

/** The request told when the client leaves, kept on the response while it is watched. */
const WATCHER = Symbol('departure watcher');

type WatchedResponse = Response & { [WATCHER]?: GoneWatcher | undefined };

/** The client closed the connection before the response finished. */
function cancelled(): AppError {
  return new AppError('cancelled', 'client closed the connection');
}

/** The `close` listener of every watched response: one function (Node calls it with the response as `this`). */
function onClose(this: WatchedResponse): void {
  if (!this.writableFinished) this[WATCHER]?.gone(cancelled());
}

/**
 * The client leaving before the response finished (with a `cancelled` AppError); reported at once
 * if it already left while authentication and admission ran. A `close` listener on the response,
 * shared by all responses, rather than an AbortController or closures per request.
 */
export function clientGone(res: Response): Departure {
  return new ResponseDeparture(res);
}

class ResponseDeparture implements Departure {
  constructor(private readonly res: WatchedResponse) {}

  watch(watcher: GoneWatcher): void {
    const { res } = this;
    if (res.closed) {
      if (!res.writableFinished) watcher.gone(cancelled());
      return;
    }
    res[WATCHER] = watcher;
    res.on('close', onClose);
  }

  unwatch(): void {
    const { res } = this;
    if (res[WATCHER] === undefined) return;
    res.off('close', onClose);
    res[WATCHER] = undefined;
  }
}
