/**
 * startGateway: wires the gateway's dependencies (clients, breakers, the fleet of workers) and listens.
 * Stop = stop accepting, let streams finish within the drain grace, then end them with an
 * error event, then close upstream channels.
 */
import { startMetricsServer } from '../../lib/metrics/server.js';
import { createGatewayMetrics, recordBreakerState, type GatewayMetrics } from './metrics.js';
import { existsSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { loadTierTable } from '../../lib/tiers/tier-table.js';
import { createApp } from './app.js';
import { cachedAuthenticate } from './auth-cache.js';
import { createBreaker, type Breaker } from './breaker.js';
import type { GatewayConfig } from './config.js';
import { createAuthPort, createQuotaPort } from './upstreams.js';
import { createLeasingQuotaPort } from './quota-leases.js';
import { createUsageRecorder } from './usage/recorder.js';
import { openUsageSpool, type UsageSpool } from './usage/spool.js';
import { spoolLayout } from './usage/spool-layout.js';
import { createUsageTracking } from './usage/tracker.js';
import { createFleet, type Fleet } from './fleet/fleet.js';
import { watchRegistry } from './fleet/registry-watch.js';
import { describeWorker } from './fleet/worker-view.js';
import { routerFromConfig } from './fleet/scoring/create-router.js';
import { grpcTls } from '../../lib/grpc/tls.js';
import { startGatewayGrpcServer } from './grpc/server.js';
import { workerTunnelService } from './fleet/tunnel/tunnel-service.js';
import { createWorkersPort } from './fleet/tunnel/workers-port.js';
import { OpenRequests } from './chat/request-signal.js';

export interface Gateway {
  port: number;
  /** Port of the gRPC front door (GATEWAY_GRPC_PORT). */
  grpcPort: number;
  server: Server;
  metrics: GatewayMetrics;
  metricsPort: number | undefined;
  fleet: Fleet;
  breakers: Breaker[];
  /** Usage records buffered and not yet acknowledged by the ledger (0 without a ledger). */
  usagePending(): number;
  stop(): Promise<void>;
}

/** This process's usage spool under GATEWAY_USAGE_SPOOL_DIR (usage/spool-layout.ts). */
function openSpool(base: string, place: { process: number; processes: number } | undefined, logger: Logger): UsageSpool {
  const layout = spoolLayout(base, existsSync(base) ? readdirSync(base) : [], place);
  return openUsageSpool(layout.dir, logger, layout.adopt);
}

export async function startGateway(
  config: GatewayConfig,
  deps: {
    logger: Logger;
    metrics?: GatewayMetrics | undefined;
    /** This process's place among the gateway processes sharing the ports (GATEWAY_PROCESSES > 1; cluster/primary.ts). */
    cluster?: { process: number; processes: number } | undefined;
  },
): Promise<Gateway> {
  const { logger } = deps;
  const metrics = deps.metrics ?? createGatewayMetrics();
  const tiers = loadTierTable(config.TIERS_FILE);
  const breakers: Breaker[] = [];
  const breaker = (name: string, timeoutMs?: number): Breaker => {
    const b = createBreaker(
      name,
      {
        errorThresholdPercentage: config.GATEWAY_BREAKER_ERROR_PERCENT,
        volumeThreshold: config.GATEWAY_BREAKER_VOLUME,
        resetTimeoutMs: config.GATEWAY_BREAKER_RESET_MS,
        rollingWindowMs: config.GATEWAY_BREAKER_WINDOW_MS,
        timeoutMs,
      },
      logger,
      (target, state) => recordBreakerState(metrics, target, state),
    );
    metrics.breakerState.set({ target: name }, 0);
    breakers.push(b);
    return b;
  };
  const common = { serviceToken: config.SERVICE_TOKEN, timeoutMs: config.GATEWAY_UNARY_TIMEOUT_MS, logger, tls: grpcTls(config) };
  const authPort = createAuthPort({ ...common, address: config.AUTH_ADDRESS, breaker: breaker('auth') });
  // Bounded cache: a revoked key is refused on every replica within GATEWAY_AUTH_CACHE_TTL_MS.
  const auth = {
    ...authPort,
    authenticate: cachedAuthenticate(authPort.authenticate, {
      ttlMs: config.GATEWAY_AUTH_CACHE_TTL_MS,
      maxEntries: config.GATEWAY_AUTH_CACHE_MAX_ENTRIES,
    }),
  };
  const quotaPort = createQuotaPort({
    ...common,
    address: config.QUOTA_ADDRESS,
    breaker: breaker('quota'),
    policy: config.GATEWAY_QUOTA_FAILURE_POLICY,
  });
  const quota =
    config.GATEWAY_QUOTA_LEASES === 'on'
      ? createLeasingQuotaPort(quotaPort, quotaPort, {
          lifetimeMs: config.GATEWAY_QUOTA_LEASE_LIFETIME_MS,
          hotRequests: config.GATEWAY_QUOTA_LEASE_HOT_REQUESTS,
          hotWindowMs: config.GATEWAY_QUOTA_LEASE_HOT_WINDOW_MS,
          clock: () => performance.now(),
          logger,
          onAdmission: (source) => metrics.quotaAdmissionsTotal.inc({ source }),
        })
      : quotaPort;
  const tls = grpcTls(config);
  // Join keys, enrollment and self-hosted worker records live in the auth service.
  const workers = createWorkersPort({ ...common, address: config.AUTH_ADDRESS, breaker: breaker('auth-workers') });
  const fleet = createFleet({
    workers: config.INFERENCE_WORKERS,
    serviceToken: config.SERVICE_TOKEN,
    tls,
    logger,
    createBreaker: (name) => breaker(name),
    // A removed worker's breaker leaves the list and the breaker metrics (unless a new worker
    // took over the same target name meanwhile).
    dropBreaker: (b) => {
      const i = breakers.indexOf(b);
      if (i >= 0) breakers.splice(i, 1);
      if (breakers.some((other) => other.name === b.name)) return;
      metrics.breakerState.remove({ target: b.name });
      for (const state of ['closed', 'half-open', 'open']) metrics.breakerTransitionsTotal.remove({ target: b.name, state });
    },
    router: routerFromConfig(config),
    workerCalls: config.GATEWAY_WORKER_CALLS,
  });
  const registryAddress = config.GATEWAY_REGISTRY_ADDRESS ?? config.AUTH_ADDRESS;
  const registry =
    registryAddress === 'off'
      ? undefined
      : watchRegistry({
          address: registryAddress,
          serviceToken: config.SERVICE_TOKEN,
          tls,
          fleet,
          logger,
          staleAfterMs: config.GATEWAY_REGISTRY_STALE_MS,
        });
  const recorder =
    config.LEDGER_ADDRESS === 'off'
      ? undefined
      : createUsageRecorder({
          address: config.LEDGER_ADDRESS,
          serviceToken: config.SERVICE_TOKEN,
          tls,
          logger,
          registry: metrics.registry,
          flushMs: config.GATEWAY_USAGE_FLUSH_MS,
          batchMax: config.GATEWAY_USAGE_BATCH_MAX,
          bufferMax: config.GATEWAY_USAGE_BUFFER_MAX,
          timeoutMs: config.GATEWAY_UNARY_TIMEOUT_MS,
          closeTimeoutMs: config.GATEWAY_USAGE_CLOSE_TIMEOUT_MS,
          spool: config.GATEWAY_USAGE_SPOOL_DIR === undefined ? undefined : openSpool(config.GATEWAY_USAGE_SPOOL_DIR, deps.cluster, logger),
        });
  const usage = createUsageTracking(recorder ? (r) => recorder.add(r) : () => undefined);
  let draining = false;
  const shutdown = new AbortController();
  // Every request in flight, over HTTP and gRPC alike, ended together when the drain grace is over.
  const requests = new OpenRequests(shutdown.signal);
  const app = createApp({
    config,
    logger,
    auth,
    quota,
    fleet,
    tiers,
    metrics,
    usage,
    ledger: recorder?.client,
    workers,
    draining: () => draining,
    requests,
  });
  // Slow or stalled clients hold a socket at most this long before their request is complete
  // (Node's defaults are 60 s for headers and 300 s for the whole request, checked every 30 s).
  const server = createServer(
    {
      headersTimeout: config.GATEWAY_HEADERS_TIMEOUT_MS,
      requestTimeout: Math.max(config.GATEWAY_REQUEST_RECEIVE_TIMEOUT_MS, config.GATEWAY_HEADERS_TIMEOUT_MS),
      connectionsCheckingInterval: Math.min(1000, config.GATEWAY_HEADERS_TIMEOUT_MS),
      // Requests and responses born with express's prototypes (routes/express-classes.ts).
      IncomingMessage: app.IncomingMessage,
      ServerResponse: app.ServerResponse,
    },
    app.listener,
  );
  server.listen(config.GATEWAY_PORT, config.GATEWAY_HOST);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.GATEWAY_PORT;
  const grpc = await startGatewayGrpcServer(
    { config, logger, auth, quota, fleet, tiers, metrics, usage, draining: () => draining, requests },
    config.GATEWAY_HOST,
    config.GATEWAY_GRPC_PORT,
    workerTunnelService({
      workers,
      fleet,
      logger,
      checkIntervalMs: config.GATEWAY_WORKER_CHECK_INTERVAL_MS,
      draining: () => draining,
      gatewayProcesses: deps.cluster?.processes ?? 1,
    }),
  ).catch(async (err: unknown) => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw err;
  });
  const metricsServer =
    config.GATEWAY_METRICS_PORT === undefined
      ? undefined
      : await startMetricsServer(metrics.registry, config.GATEWAY_HOST, config.GATEWAY_METRICS_PORT, {
          '/workers': () => ({ workers: fleet.workers.map(describeWorker) }),
        });
  logger.info({ port, workers: config.INFERENCE_WORKERS.length }, 'gateway listening');

  return {
    port,
    grpcPort: grpc.port,
    server,
    metrics,
    metricsPort: metricsServer?.port,
    fleet,
    breakers,
    usagePending: () => recorder?.pending() ?? 0,
    async stop() {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const grace = setTimeout(() => shutdown.abort(), config.GATEWAY_DRAIN_GRACE_MS);
      // Keep-alive sockets that go idle during the drain are closed as they do.
      const idleCloser = setInterval(() => server.closeIdleConnections(), 250);
      // gRPC streams end with gateway_draining at the grace too; the extra second lets them say so.
      await Promise.all([closed, grpc.shutdown(config.GATEWAY_DRAIN_GRACE_MS + 1000)]);
      clearTimeout(grace);
      clearInterval(idleCloser);
      shutdown.abort();
      registry?.close();
      await fleet.close();
      await metricsServer?.close();
      auth.close();
      workers.close();
      await quota.close();
      // After the server closed: every request's record is buffered by now.
      await recorder?.close();
      for (const b of breakers) b.shutdown();
    },
  };
}
