/**
 * Serving a registry in Prometheus text format: `metricsHandler` (plain node:http handler, also
 * mountable on express: `app.get('/metrics', metricsHandler(registry))`) and `startMetricsServer`
 * (a small node:http server with only `GET /metrics`, for the gRPC processes).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

const METRICS_PATH = '/metrics';

/** What `/metrics` serves: a registry, or anything that renders an exposition (a cluster's aggregate). */
export type MetricsSource = Pick<Registry, 'metrics' | 'contentType'>;

/** Writes the registry's exposition (or a 500 if a collector throws). */
export function metricsHandler(registry: MetricsSource) {
  return (_req: IncomingMessage, res: ServerResponse): void => {
    registry.metrics().then(
      (body) => {
        res.writeHead(200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' });
        res.end(body);
      },
      () => {
        if (res.headersSent) return void res.destroy();
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('metrics collection failed\n');
      },
    );
  };
}

export interface MetricsServer {
  /** The bound port (useful with port 0). */
  port: number;
  /** Stops listening and closes idle and open scrape connections. */
  close(): Promise<void>;
}

/** Operator-only JSON views served beside `/metrics` (path → current value), e.g. `/workers`. */
export type OperatorViews = Record<string, () => unknown>;

/**
 * Listens on host:port and answers `GET /metrics` and the given operator views; everything else
 * is 404 (405 for other verbs). This port is for operators, never the public API port.
 */
export async function startMetricsServer(registry: MetricsSource, host: string, port: number, views: OperatorViews = {}): Promise<MetricsServer> {
  const handle = metricsHandler(registry);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const view = Object.hasOwn(views, path) ? views[path] : undefined;
    if (path !== METRICS_PATH && !view) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'Content-Type': 'text/plain; charset=utf-8', Allow: 'GET, HEAD' });
      res.end('method not allowed\n');
      return;
    }
    if (view) {
      // A view may be a promise (the gateway cluster primary asks its processes).
      Promise.resolve()
        .then(view)
        .then(
          (value) => {
            res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
            res.end(JSON.stringify(value));
          },
          () => {
            res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
            res.end('view failed\n');
          },
        );
      return;
    }
    handle(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
