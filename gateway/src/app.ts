/**
 * createApp: the gateway's express app from its dependencies (no listening: start.ts listens).
 * Routing (path-based and DNS-based), request ids, body parsing, the OpenAI error envelope.
 */
import { httpMetricsMiddleware } from '../../lib/metrics/http.js';
import type { GatewayMetrics } from './metrics.js';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { AppError, invalidRequest, notFound } from '../../lib/errors/app-error.js';
import { toHttpError } from '../../lib/errors/http.js';
import type { TierTable } from '../../lib/tiers/tier-table.js';
import type { GatewayConfig } from './config.js';
import { draining } from './failure-policy.js';
import { requestLogging } from './request-log.js';
import type { RequestLocals } from './request-context.js';
import { chatCompletionsHandler } from './routes/chat-completions.js';
import { completionsHandler } from './routes/completions.js';
import { embeddingsHandler } from './routes/embeddings.js';
import { managementRouter } from './routes/management.js';
import { modelsHandler } from './routes/models.js';
import { usageRouter } from './routes/usage.js';
import { workersRouter } from './routes/workers.js';
import type { WorkersPort } from './fleet/tunnel/workers-port.js';
import type { LedgerClient } from './usage/recorder.js';
import type { UsageTracking } from './usage/tracker.js';
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
  /** Aborted when in-flight streams must end (drain grace over). */
  shutdown: AbortSignal;
  metrics: GatewayMetrics;
  /** One usage record per authenticated request. */
  usage: UsageTracking;
  /** Ledger client for the usage routes; undefined when LEDGER_ADDRESS=off. */
  ledger: LedgerClient | undefined;
  /** Join keys and self-hosted worker records (auth's WorkerService). */
  workers: WorkersPort;
}

export function createApp(deps: GatewayDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use(httpMetricsMiddleware(deps.metrics, { mounts: ['/:project/v1/management', '/:project/v1/usage', '/:project/v1/workers'] }));
  app.use(requestLogging(deps.logger));

  // Liveness and readiness are public and say nothing about the fleet beyond counts; per-worker
  // detail (pools, breaker states, load) is for operators, on the metrics port.
  app.get('/healthz', (_req, res) => {
    res.status(deps.draining() ? 503 : 200).json({ status: deps.draining() ? 'draining' : 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    const total = deps.fleet.workers.length;
    const ready = deps.fleet.workers.filter((w) => w.connected && (w.status?.modelLoaded ?? false) && w.breaker.state() !== 'open').length;
    const ok = !deps.draining() && ready > 0;
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : deps.draining() ? 'draining' : 'not_ready', workers: { ready, total } });
  });

  // DNS-based URLs: {endpoint}.{project}.<base domain>/v1/... become /{project}/{endpoint}/v1/...
  const suffix = `.${deps.config.GATEWAY_BASE_DOMAIN}`;
  app.use((req: Request, _res: Response, next: NextFunction) => {
    const host = (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '');
    if (host.endsWith(suffix) && req.url.startsWith('/v1/')) {
      const labels = host.slice(0, -suffix.length).split('.');
      if (labels.length === 2 && labels[0] && labels[1]) {
        req.url = `/${labels[1]}/${labels[0]}${req.url}`;
      }
    }
    next();
  });

  // Node keeps the first of repeated Authorization/Host headers and drops the rest; a proxy in
  // front may keep the last. Refuse the ambiguity instead of guessing which one was meant.
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

  app.use(express.json({ limit: deps.config.GATEWAY_BODY_LIMIT, strict: true }));

  app.post('/:project/:endpoint/v1/chat/completions', chatCompletionsHandler(deps));
  app.post('/:project/:endpoint/v1/completions', completionsHandler(deps));
  app.post('/:project/:endpoint/v1/embeddings', embeddingsHandler(deps));
  app.get('/:project/:endpoint/v1/models', modelsHandler(deps));
  app.use('/:project/v1/management', managementRouter({ auth: deps.auth }));
  app.use('/:project/v1/usage', usageRouter({ auth: deps.auth, ledger: deps.ledger }));
  app.use('/:project/v1/workers', workersRouter({ auth: deps.auth, workers: deps.workers }));

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(notFound(`Unknown route: ${req.method} ${req.path.slice(0, 200)}`, { code: 'unknown_route' }));
  });

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const locals = res.locals as RequestLocals;
    const mapped = toHttpError(fromFramework(err));
    if (mapped.body.error.code) locals.errorCode = mapped.body.error.code;
    if (mapped.status >= 500 && mapped.status !== 503) locals.logger.error({ err }, 'request failed');
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(mapped.status).set({ ...locals.headers, ...mapped.headers }).json(mapped.body);
  });
  return app;
}

/**
 * Errors raised by express and body-parser (bad percent-encoding in the path, corrupt or
 * truncated compressed bodies, bad JSON, oversized bodies) are the client's mistakes: map them
 * into our hierarchy by their status so none of them becomes a 500.
 */
function fromFramework(err: unknown): unknown {
  if (err instanceof AppError) return err;
  const e = err as { type?: unknown; status?: unknown; statusCode?: unknown } | null;
  const type = e?.type;
  if (type === 'entity.parse.failed') {
    return invalidRequest('The request body is not valid JSON.', { code: 'json_parse_error' });
  }
  if (type === 'entity.too.large') {
    return new AppError('too_large', 'The request body is too large.');
  }
  if ((typeof type === 'string' && type.startsWith('encoding')) || type === 'charset.unsupported') {
    return invalidRequest('Unsupported request body encoding.', { code: 'invalid_request' });
  }
  if (err instanceof URIError) {
    return invalidRequest('The request path is not valid percent-encoding.', { code: 'invalid_request' });
  }
  const status = typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : 0;
  if (status === 413) return new AppError('too_large', 'The request body is too large.');
  if (status >= 400 && status < 500) {
    return invalidRequest('The request could not be read (malformed path, encoding or body).', { code: 'invalid_request' });
  }
  return err;
}

const SINGLE_HEADERS = new Set(['authorization', 'host']);

function repeatedHeader(raw: string[]): AppError | undefined {
  const seen = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]?.toLowerCase() ?? '';
    if (!SINGLE_HEADERS.has(name)) continue;
    if (seen.has(name)) return invalidRequest(`The ${name} header must appear once.`, { code: 'duplicate_header', param: name });
    seen.add(name);
  }
  return undefined;
}
