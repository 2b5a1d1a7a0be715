/**
 * startQuotaService: builds and starts one quota process (no signal handling; main.ts owns that).
 * Tests call it directly on port 0, with an injected clock when they need to control time.
 */
import { createQuotaMetrics, type QuotaMetrics } from './metrics.js';
import type { Logger } from 'pino';
import { QuotaServiceDefinition } from '../../../gen/xerotier/quota/v1/quota_service.js';
import { createGrpcServer, setHealth } from '../../../lib/grpc/server.js';
import { grpcTls } from '../../../lib/grpc/tls.js';
import { loadTierTable } from '../../../lib/tiers/tier-table.js';
import { systemClock, type Clock } from './clock.js';
import type { QuotaConfig } from './config.js';
import { createFailoverStore, type FailoverStore } from './failover-store.js';
import { createQuotaService, type QuotaStats } from './quota-service.js';
import { createMemoryStore } from './stores/memory.js';
import { createRedisStore } from './stores/redis.js';
import type { QuotaStore } from './stores/store.js';

/** How long startup waits for Redis before serving degraded (per the failure policy). */
const REDIS_STARTUP_WAIT_MS = 2_000;
const SHUTDOWN_GRACE_MS = 2_000;

export interface QuotaServer {
  port: number;
  /** Prometheus port when QUOTA_METRICS_PORT is set. */
  metricsPort: number | undefined;
  /** Store health: backend, Redis errors (counter), outage state. */
  stats(): QuotaStats;
  stop(): Promise<void>;
}

export async function startQuotaService(
  config: QuotaConfig,
  deps: { logger: Logger; clock?: Clock; metrics?: QuotaMetrics | undefined },
): Promise<QuotaServer> {
  const { logger } = deps;
  const metrics = deps.metrics ?? createQuotaMetrics();
  const clock = deps.clock ?? systemClock;
  const tiers = config.TIERS_FILE === undefined ? loadTierTable() : loadTierTable(config.TIERS_FILE);

  let store: QuotaStore;
  let failover: FailoverStore | undefined;
  if (config.QUOTA_REDIS_URL) {
    const redis = createRedisStore(config.QUOTA_REDIS_URL, {
      prefix: config.QUOTA_REDIS_PREFIX,
      commandTimeoutMs: config.QUOTA_REDIS_TIMEOUT_MS,
    });
    if (!(await redis.waitReady(REDIS_STARTUP_WAIT_MS))) {
      logger.warn({ policy: config.QUOTA_FAILURE_POLICY }, 'redis not reachable at startup; serving per the failure policy');
    }
    failover = createFailoverStore({
      primary: redis,
      policy: config.QUOTA_FAILURE_POLICY,
      localDivisor: config.QUOTA_LOCAL_FALLBACK_DIVISOR,
      timeoutMs: config.QUOTA_REDIS_TIMEOUT_MS,
      logger,
      clock,
      onStoreError: () => metrics.quotaStoreErrorsTotal.inc(),
    });
    store = failover;
  } else {
    store = createMemoryStore();
  }

  const service = createQuotaService({
    store,
    tiers,
    clock,
    metrics,
    leaseHeadroom: config.QUOTA_LEASE_HEADROOM,
    leaseMinLimit: config.QUOTA_LEASE_MIN_LIMIT,
    ...(failover ? { stats: failover.stats } : {}),
  });
  const names = [QuotaServiceDefinition.fullName];
  const grpc = createGrpcServer({
    tls: grpcTls(config),
    logger,
    serviceNames: names,
    serviceToken: config.SERVICE_TOKEN,
    metrics,
    metricsPort: config.QUOTA_METRICS_PORT,
  });
  grpc.server.add(QuotaServiceDefinition, service.impl);
  let port: number;
  try {
    port = await grpc.listen(config.QUOTA_HOST, config.QUOTA_PORT);
  } catch (err) {
    await store.close();
    throw err;
  }
  setHealth(grpc.health, names, true);
  logger.info(
    {
      port,
      store: store.kind,
      prefix: failover ? config.QUOTA_REDIS_PREFIX : undefined,
      policy: failover ? config.QUOTA_FAILURE_POLICY : undefined,
      tiers: tiers.size,
    },
    'quota service listening',
  );

  let stopping: Promise<void> | undefined;
  return {
    port,
    metricsPort: grpc.metricsPort(),
    stats: service.stats,
    stop() {
      stopping ??= (async () => {
        await grpc.shutdown(SHUTDOWN_GRACE_MS);
        await store.close();
      })();
      return stopping;
    },
  };
}
