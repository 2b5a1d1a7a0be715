/**
 * createApp: the gateway's HTTP request listener from its dependencies (no listening: start.ts
 * listens). Routing (path-based and DNS-based), request ids, body parsing, the OpenAI error
 * envelope, in an express app; the inference routes are dispatched directly
 * (routes/direct-dispatch.ts) with the same steps, every other request goes through express.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { httpMetricsMiddleware, routeMeasure } from '../../lib/metrics/http.js';
import type { GatewayMetrics } from './metrics.js';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { notFound } from '../../lib/errors/app-error.js';
import type { TierTable } from '../../lib/tiers/tier-table.js';
import type { GatewayConfig } from './config.js';
import { draining } from './failure-policy.js';
import { requestLogging } from './request-log.js';
import type { RequestLocals } from './request-context.js';
import { chatCompletionsHandler } from './routes/chat-completions.js';
import { completionsHandler } from './routes/completions.js';
import { directDispatch } from './routes/direct-dispatch.js';
import { expressHttpClasses, type ExpressHttpClasses } from './routes/express-classes.js';
import { hostRoutedUrl, repeatedHeader, sendError } from './routes/http-boundary.js';
import { embeddingsHandler } from './routes/embeddings.js';
import { managementRouter } from './routes/management.js';
import { modelsHandler } from './routes/models.js';
import { usageRouter } from './routes/usage.js';
import { workersRouter } from './routes/workers.js';
import type { WorkersPort } from './fleet/tunnel/workers-port.js';
import type { LedgerClient } from './usage/recorder.js';
import type { UsageTracking } from './usage/tracker.js';
import type { OpenRequests } from './chat/request-signal.js';
import type { AuthPort, QuotaPort } from './upstreams.js';
import type { Fleet } from './fleet/fleet.js';

export interface GatewayDeps {
  config: GatewayConfig;
  logger: Logger;
  auth: AuthPort;
  quota: QuotaPort;
  fleet: Fleet;
  tiers: TierTable;
  /** True once the gateway stops admitting new requests. */
  draining: () => boolean;
  /** The requests in flight: ended when in-flight streams must end (drain grace over). */
  requests: OpenRequests;
  metrics: GatewayMetrics;
  /** One usage record per authenticated request. */
  usage: UsageTracking;
  /** Ledger client for the usage routes; undefined when LEDGER_ADDRESS=off. */
  ledger: LedgerClient | undefined;
  /** Join keys and self-hosted worker records (auth's WorkerService). */
  workers: WorkersPort;
}

const CHAT_COMPLETIONS = '/:project/:endpoint/v1/chat/completions';
const COMPLETIONS = '/:project/:endpoint/v1/completions';
const EMBEDDINGS = '/:project/:endpoint/v1/embeddings';

/** The gateway's HTTP request listener and the request/response classes its server must build (start.ts). */
export interface GatewayHttp extends ExpressHttpClasses {
  listener: RequestListener;
}

export function createApp(deps: GatewayDeps): GatewayHttp {
  const app = express();
  const classes = expressHttpClasses(app);
  app.disable('x-powered-by');
  app.set('etag', false);

  const logging = requestLogging(deps.logger);
  const json = express.json({ limit: deps.config.GATEWAY_BODY_LIMIT, strict: true });
  const chat = chatCompletionsHandler(deps);
  const completions = completionsHandler(deps);
  const embeddings = embeddingsHandler(deps);

  app.use(httpMetricsMiddleware(deps.metrics, { mounts: ['/:project/v1/management', '/:project/v1/usage', '/:project/v1/workers'] }));
  app.use(logging);

  // Liveness and readiness are public and say nothing about the fleet beyond counts; per-worker
  // detail (pools, breaker states, load) is for operators, on the metrics port.
  app.get('/healthz', (_req, res) => {
    (res.locals as RequestLocals).probe = true;
    res.status(deps.draining() ? 503 : 200).json({ status: deps.draining() ? 'draining' : 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    (res.locals as RequestLocals).probe = true;
    const total = deps.fleet.workers.length;
    const ready = deps.fleet.workers.filter((w) => w.connected && (w.status?.modelLoaded ?? false) && w.breaker.state() !== 'open').length;
    const ok = !deps.draining() && ready > 0;
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : deps.draining() ? 'draining' : 'not_ready', workers: { ready, total } });
  });

  // DNS-based URLs: {endpoint}.{project}.<base domain>/v1/... become /{project}/{endpoint}/v1/...
  const suffix = `.${deps.config.GATEWAY_BASE_DOMAIN}`;
  app.use((req: Request, _res: Response, next: NextFunction) => {
    const url = hostRoutedUrl(req.headers.host, req.url, suffix);
    if (url !== undefined) req.url = url;
    next();
  });

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(repeatedHeader(req.rawHeaders));
  });

  app.use((_req: Request, res: Response, next: NextFunction) => {
    if (deps.draining()) {
      // Close the connection after this answer, so keep-alive clients reconnect to a live
      // replica instead of hearing 503 on the same socket until the drain grace ends.
      res.setHeader('connection', 'close');
      next(draining());
    } else {
      next();
    }
  });

  app.use(json);

  app.post(CHAT_COMPLETIONS, chat);
  app.post(COMPLETIONS, completions);
  app.post(EMBEDDINGS, embeddings);
  app.get('/:project/:endpoint/v1/models', modelsHandler(deps));
  app.use('/:project/v1/management', managementRouter({ auth: deps.auth }));
  app.use('/:project/v1/usage', usageRouter({ auth: deps.auth, ledger: deps.ledger }));
  app.use('/:project/v1/workers', workersRouter({ auth: deps.auth, workers: deps.workers }));

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(notFound(`Unknown route: ${req.method} ${req.path.slice(0, 200)}`, { code: 'unknown_route' }));
  });

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    sendError(err, req, res);
  });

  const direct = directDispatch({
    routes: {
      'chat/completions': { template: CHAT_COMPLETIONS, handler: chat },
      completions: { template: COMPLETIONS, handler: completions },
      embeddings: { template: EMBEDDINGS, handler: embeddings },
    },
    hostSuffix: suffix,
    prototypes: { request: app.request, response: app.response },
    measure: routeMeasure(deps.metrics),
    logging: logging as (req: IncomingMessage, res: ServerResponse & { locals: object }, next: () => void) => void,
    draining: deps.draining,
    json: json as (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void,
  });
  return {
    ...classes,
    listener: (req, res) => {
      if (!direct(req, res)) app(req, res);
    },
  };
}
