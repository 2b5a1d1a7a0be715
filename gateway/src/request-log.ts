/**
 * Per-request id and logging for the HTTP gateway, kept cheap on the hot path: the gateway's own
 * request id (`X-Request-ID`), a request logger created only when something logs through it, and
 * one access-log line per request (`request completed` / `request errored`) written only when its
 * level is enabled. Field names are those of the usual pino-http line: `req` {method, url, id},
 * `res` {statusCode}, `responseTime` (ms), `clientRequestId`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { redactUrl } from './log-redaction.js';
import type { RequestLocals } from './request-context.js';
import { createRequestIds, type RequestIds } from './request-id.js';

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * `res.locals` of a request: its id, and its logger, a child with the id made on first use (most
 * requests never log). The lazy logger is an accessor on this class's prototype, shared by every
 * request. Defined on each request's object with fresh closures (as it once was), it gave every
 * object a hidden class of its own, which V8 allocates in the old generation; through it the
 * closures, and the request they capture, outlived young-generation collections and were promoted:
 * at 200 requests/s the gateway's old generation grew by megabytes a second and its scavenges took
 * 10–15 ms instead of about 1 (`--trace-gc`, requests answered 404).
 */
class Locals implements RequestLocals {
  declare headers?: Record<string, string>;
  declare errorCode?: string;
  declare probe?: true;
  #child: Logger | undefined;
  readonly #root: Logger;
  readonly #bindings: () => Record<string, unknown>;

  constructor(
    public requestId: string,
    root: Logger,
    bindings: () => Record<string, unknown>,
  ) {
    this.#root = root;
    this.#bindings = bindings;
  }

  get logger(): Logger {
    return (this.#child ??= this.#root.child(this.#bindings()));
  }

  set logger(logger: Logger) {
    this.#child = logger;
  }
}

export function requestLogging(root: Logger, nextId: RequestIds = createRequestIds()) {
  return (req: IncomingMessage, res: ServerResponse & { locals: object }, next: () => void): void => {
    // The request id is always the gateway's own: it keys the quota reservation and the
    // completion id, so a client must never choose it (a repeated id would be taken as a retry
    // and admitted free). A client's X-Request-ID is kept in the log line for correlation.
    const id = nextId();
    res.setHeader('x-request-id', id);
    const given = req.headers['x-request-id'];
    const clientRequestId = typeof given === 'string' && SAFE_REQUEST_ID.test(given) ? given : undefined;
    const bindings = (): Record<string, unknown> => ({
      req: { method: req.method, url: redactUrl(req.url ?? ''), id },
      ...(clientRequestId === undefined ? {} : { clientRequestId }),
    });
    // Whatever a step before this one put in res.locals is kept.
    const locals: RequestLocals = Object.assign(new Locals(id, root, bindings), res.locals);
    res.locals = locals;
    // Info is the access log's level, errors (5xx) are logged at error, probes at debug: nothing to
    // do when none of them is on.
    if (root.isLevelEnabled('error')) {
      const started = performance.now();
      let logged = false;
      const done = (): void => {
        if (logged) return;
        logged = true;
        const status = res.statusCode;
        const failed = status >= 500;
        const level = locals.probe ? 'debug' : failed ? 'error' : 'info';
        if (!root.isLevelEnabled(level)) return;
        const fields = { res: { statusCode: status }, responseTime: Math.round(performance.now() - started) };
        locals.logger[level](fields, failed ? 'request errored' : 'request completed');
      };
      // Plain listeners (\`done\` runs once anyway): \`once\` adds a wrapper and a bound function
      // per event, held by every open stream.
      res.on('finish', done);
      res.on('close', done);
    }
    next();
  };
}
