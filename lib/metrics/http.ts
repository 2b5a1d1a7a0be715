/**
 * HTTP request metrics (the gateway's), as a plain `(req, res, next)` middleware (express-compatible
 * without importing express): `http_requests_total{route,status}` and
 * `http_request_duration_seconds{route}` once the response ends. `route` is the matched route
 * template (express `req.route.path`, e.g. `/:project/:endpoint/v1/chat/completions`), never the
 * raw URL, so label cardinality stays bounded; requests no route matched are `unmatched`.
 * Routers mounted with `app.use(prefix, router)`: express only keeps the concrete prefix
 * (`req.baseUrl` = `/demo/v1/management`), so pass the mount templates as `mounts`
 * (`['/:project/v1/management']`) to get `/:project/v1/management/api-keys/:id`; an unknown
 * prefix becomes the single segment `*` (for example `*` + `/api-keys/:id`).
 * A client that disconnects before the response finished is counted with status `499`.
 * Requests dispatched without express's router (the gateway's inference routes) are measured by
 * `routeMeasure`: the same series and labels, the route set by the dispatcher.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Histogram, type Registry } from 'prom-client';

const UNMATCHED_ROUTE = 'unmatched';
const CLIENT_CLOSED_STATUS = 499;

/** Request/stream durations: from 10 ms up to 5 minutes (long streams). */
const HTTP_DURATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export interface HttpMetrics {
  readonly httpRequestsTotal: Counter<'route' | 'status'>;
  readonly httpRequestDuration: Histogram<'route'>;
}

/** The two HTTP series, registered on a process's registry. */
export function createHttpMetrics(registry: Registry): HttpMetrics {
  return {
    httpRequestsTotal: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests handled, by route template and status code.',
      labelNames: ['route', 'status'] as const,
      registers: [registry],
    }),
    httpRequestDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration in seconds (streams: until the last byte), by route template.',
      labelNames: ['route'] as const,
      buckets: HTTP_DURATION_BUCKETS,
      registers: [registry],
    }),
  };
}

/** The fields express adds to the request once a route matched. */
interface RoutedRequest extends IncomingMessage {
  baseUrl?: string;
  route?: { path?: unknown };
}

/** Whether a concrete path (`/demo/v1/management`) fits a template (`/:project/v1/management`). */
function fitsTemplate(path: string, template: string): boolean {
  const a = path.split('/');
  const b = template.split('/');
  return a.length === b.length && b.every((seg, i) => seg.startsWith(':') ? a[i] !== '' : seg === a[i]);
}

/** Route template of a finished express request, or `unmatched`. */
function routeTemplate(req: IncomingMessage, mounts: readonly string[] = []): string {
  const routed = req as RoutedRequest;
  const path = routed.route?.path;
  if (path === undefined) return UNMATCHED_ROUTE;
  const route = typeof path === 'string' ? path : String(path);
  const base = routed.baseUrl ?? '';
  if (base === '') return route;
  return `${mounts.find((m) => fitsTemplate(base, m)) ?? '*'}${route}`;
}

export interface HttpMetricsOptions {
  /** Templates of the prefixes routers are mounted at, e.g. `['/:project/v1/management']`. */
  mounts?: readonly string[] | undefined;
  /** Route label of a request; default `routeTemplate(req, mounts)`. */
  routeOf?: ((req: IncomingMessage) => string) | undefined;
}

/** The status a response is counted with: its own once finished, 499 if the client left first. */
function countedStatus(res: ServerResponse): number {
  return res.writableFinished ? res.statusCode : CLIENT_CLOSED_STATUS;
}

export function httpMetricsMiddleware(metrics: HttpMetrics, options: HttpMetricsOptions = {}) {
  const mounts = options.mounts ?? [];
  const routeOf = options.routeOf ?? ((req: IncomingMessage) => routeTemplate(req, mounts));
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const started = performance.now();
    let recorded = false;
    const record = (): void => {
      if (recorded) return;
      recorded = true;
      const status = countedStatus(res);
      const route = routeOf(req);
      metrics.httpRequestsTotal.inc({ route, status: String(status) });
      metrics.httpRequestDuration.observe({ route }, (performance.now() - started) / 1000);
    };
    // Plain listeners (\`record\` runs once anyway): \`once\` adds a wrapper and a bound function
    // per event, held by every open stream.
    res.on('finish', record);
    res.on('close', record);
    next();
  };
}

/**
 * The HTTP metrics of requests dispatched without express's router: the middleware's two series
 * and labels, with one `close` listener per request (a response always emits `close`, after
 * `finish` when it completed) and the label objects made once per route and status. The request
 * counts as `unmatched` until its route is set, as express counts a request refused before it
 * reached its route (bad JSON, draining, a repeated header).
 */
export function routeMeasure(metrics: HttpMetrics): (res: ServerResponse) => (route: string) => void {
  const labels = new Map<string, { route: { route: string }; byStatus: Map<number, { route: string; status: string }> }>();
  const labelsOf = (route: string) => {
    let known = labels.get(route);
    if (!known) {
      known = { route: { route }, byStatus: new Map() };
      labels.set(route, known);
    }
    return known;
  };
  return (res) => {
    const started = performance.now();
    let route = UNMATCHED_ROUTE;
    // A plain listener: `close` is emitted once, and `once` wraps the listener per request.
    res.on('close', () => {
      const status = countedStatus(res);
      const known = labelsOf(route);
      let statusLabels = known.byStatus.get(status);
      if (!statusLabels) {
        statusLabels = { route, status: String(status) };
        known.byStatus.set(status, statusLabels);
      }
      metrics.httpRequestsTotal.inc(statusLabels);
      metrics.httpRequestDuration.observe(known.route, (performance.now() - started) / 1000);
    });
    return (matched) => {
      route = matched;
    };
  };
}
