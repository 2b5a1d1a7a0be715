/**
 * Direct dispatch of the inference routes (`POST /{project}/{endpoint}/v1/chat/completions`,
 * `/v1/completions`, `/v1/embeddings`, path-based or DNS-host-based): the same steps the express
 * app takes for them — metrics, request id and access log, DNS rewrite, repeated-header and drain
 * checks, the JSON body parser, the route handler, the error response — called in order from one
 * function instead of through express's router and middleware chain on every request.
 *
 * Only a request in the canonical form is taken here: POST, an origin-form URL whose path is
 * exactly `/{project}/{endpoint}/v1/{route}` (lower-case literals, no trailing slash, parameters
 * that decode). Anything else (other methods, other routes, case or slash variants, malformed
 * percent-encoding) is left to the express app, which answers it as before (404, 400, ...).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, Response } from 'express';
import { draining as drainingError } from '../failure-policy.js';
import { hostRoutedUrl, repeatedHeader, sendError } from './http-boundary.js';

type Handler = (req: Request, res: Response) => Promise<void>;
type Step = (req: IncomingMessage, res: ServerResponse & { locals: object }, next: (err?: unknown) => void) => void;

export interface InferenceRoute {
  /** The express route template, also the `route` label of the HTTP metrics. */
  template: string;
  handler: Handler;
}

export interface DirectDispatchOptions {
  /** By the path after `/{project}/{endpoint}/v1/`: `chat/completions`, `completions`, `embeddings`. */
  routes: Readonly<Record<string, InferenceRoute>>;
  /** `.` + the base domain of DNS-based URLs. */
  hostSuffix: string;
  /** express's request and response prototypes (the handlers use its response helpers). */
  prototypes: { request: object; response: object };
  /** The HTTP metrics of a request, recorded once it ends; the returned function names its route. */
  measure: (res: ServerResponse) => (route: string) => void;
  /** Request id and access log (request-log.ts). */
  logging: Step;
  /** True once the gateway stops admitting new requests. */
  draining: () => boolean;
  /** The JSON body parser the express app uses (same limit and content-type rules). */
  json: Step;
}

interface Match {
  route: InferenceRoute;
  url: string | undefined;
  project: string;
  endpoint: string;
}

/** Returns a function that takes a request (true) or leaves it to the caller (false). */
export function directDispatch(options: DirectDispatchOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { routes, hostSuffix, prototypes, measure, logging, draining, json } = options;

  const match = (req: IncomingMessage): Match | undefined => {
    const url = req.url ?? '';
    const rewritten = hostRoutedUrl(req.headers.host, url, hostSuffix);
    const target = rewritten ?? url;
    if (target.charCodeAt(0) !== 47 /* / */) return undefined;
    const query = target.indexOf('?');
    const path = query < 0 ? target : target.slice(0, query);
    const second = path.indexOf('/', 1);
    const third = second < 0 ? -1 : path.indexOf('/', second + 1);
    if (second <= 1 || third <= second + 1 || !path.startsWith('/v1/', third)) return undefined;
    const route = routes[path.slice(third + 4)];
    if (!route) return undefined;
    const project = param(path.slice(1, second));
    const endpoint = param(path.slice(second + 1, third));
    if (project === undefined || endpoint === undefined) return undefined;
    return { route, url: rewritten, project, endpoint };
  };

  return (req, res) => {
    if (req.method !== 'POST') return false;
    const hit = match(req);
    if (!hit) return false;
    // What express's app.handle does before its router: the two prototypes and res.locals.
    const r = req as IncomingMessage & { res?: ServerResponse; params?: Record<string, string> };
    const s = res as ServerResponse & { locals: object; req?: IncomingMessage };
    r.res = s;
    s.req = r;
    Object.setPrototypeOf(r, prototypes.request);
    Object.setPrototypeOf(s, prototypes.response);
    s.locals = Object.create(null) as object;
    const routed = measure(s);
    logging(r, s, noop);
    if (hit.url !== undefined) r.url = hit.url;
    const fail = (err: unknown): void => sendError(err, r, s);
    const refused = repeatedHeader(r.rawHeaders);
    if (refused) {
      fail(refused);
      return true;
    }
    if (draining()) {
      // Close the connection after this answer, so keep-alive clients reconnect to a live replica.
      s.setHeader('connection', 'close');
      fail(drainingError());
      return true;
    }
    json(r, s, (err?: unknown) => {
      if (err !== undefined) {
        fail(err);
        return;
      }
      // Where express would have matched the route: after every check and the body parser.
      routed(hit.route.template);
      r.params = { project: hit.project, endpoint: hit.endpoint };
      hit.route.handler(r as Request, s as unknown as Response).catch(fail);
    });
    return true;
  };
}

/** A path parameter as express decodes it; undefined when it is not valid percent-encoding. */
function param(segment: string): string | undefined {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

function noop(): void {}
