/**
 * startAuthService: builds and starts the auth process (no signal handling; main.ts owns that).
 * Tests call it directly on port 0 with `AUTH_SQLITE_PATH=:memory:`.
 */
import type { Logger } from 'pino';
import { AuthServiceDefinition } from '../../../gen/xerotier/auth/v1/auth_service.js';
import { RegistryServiceDefinition } from '../../../gen/xerotier/registry/v1/registry_service.js';
import { WorkerServiceDefinition } from '../../../gen/xerotier/workers/v1/worker_service.js';
import { createWorkerService } from './workers/worker-service.js';
import { createGrpcServer, setHealth } from '../../../lib/grpc/server.js';
import { grpcTls } from '../../../lib/grpc/tls.js';
import { watchStoreHealth } from '../../../lib/db/health-watch.js';
import { createAuthMetrics, type AuthMetrics } from './metrics.js';
import { loadTierTable } from '../../../lib/tiers/tier-table.js';
import { createAuthService, type AuthService } from './auth-service.js';
import { DEV_KEY_PEPPER, type AuthConfig } from './config.js';
import { createLeaseTable } from './registry/lease-table.js';
import { createRegistryService } from './registry/registry-service.js';
import { seedDemo } from './seed.js';
import { openAuthStore, type StoreLocation } from './stores/kysely-store.js';
import type { AuthStore } from './stores/store.js';

export interface RunningAuthService {
  port: number;
  /** Prometheus port when AUTH_METRICS_PORT is set. */
  metricsPort: number | undefined;
  store: AuthStore;
  service: AuthService;
  /** Stops serving (bounded), then closes the database. */
  stop(): Promise<void>;
}

export function storeLocation(config: AuthConfig): StoreLocation {
  return config.AUTH_DATABASE_URL === undefined
    ? { dialect: 'sqlite', path: config.AUTH_SQLITE_PATH }
    : { dialect: 'postgres', url: config.AUTH_DATABASE_URL, schema: config.AUTH_DATABASE_SCHEMA };
}

export async function startAuthService(
  config: AuthConfig,
  deps: {
    logger: Logger;
    now?: (() => number) | undefined;
    metrics?: AuthMetrics | undefined;
    /** How often the database is pinged for the health status (default 5 s). */
    storeHealthIntervalMs?: number | undefined;
  },
): Promise<RunningAuthService> {
  const { logger } = deps;
  if (config.AUTH_KEY_PEPPER === DEV_KEY_PEPPER) {
    logger.warn(
      'AUTH_KEY_PEPPER is not set: API key hashes use the built-in development pepper. ' +
        'Set AUTH_KEY_PEPPER to a long random secret before storing real keys (changing it later invalidates all keys).',
    );
  }
  const tiers = loadTierTable(config.TIERS_FILE);
  const store = await openAuthStore(storeLocation(config), logger);
  try {
    const service = createAuthService({
      store,
      pepper: config.AUTH_KEY_PEPPER,
      tiers,
      rotationGraceSeconds: config.AUTH_ROTATION_GRACE_SECONDS,
      logger,
      now: deps.now,
    });
    if (config.AUTH_SEED_DEMO) await seedDemo({ service, store, logger }, config.AUTH_DEMO_KEY_FILE);

    // The fleet's registry (live inference workers) is hosted here: see docs/decisions.md.
    const registry = createRegistryService(createLeaseTable({ ttlMs: config.AUTH_REGISTRY_LEASE_TTL_MS }), logger);
    const names = [AuthServiceDefinition.fullName, RegistryServiceDefinition.fullName, WorkerServiceDefinition.fullName];
    const grpc = createGrpcServer({
      tls: grpcTls(config),
      logger,
      serviceNames: names,
      serviceToken: config.SERVICE_TOKEN,
      metrics: deps.metrics ?? createAuthMetrics(),
      metricsPort: config.AUTH_METRICS_PORT,
    });
    grpc.server.add(AuthServiceDefinition, service);
    grpc.server.add(RegistryServiceDefinition, registry.impl);
    // Join keys, enrollment and self-hosted worker records (the gateway's worker tunnel asks here).
    grpc.server.add(
      WorkerServiceDefinition,
      createWorkerService({
        store,
        pepper: config.AUTH_KEY_PEPPER,
        credentialTtlMs: config.AUTH_WORKER_CREDENTIAL_TTL_SECONDS * 1000,
        logger,
        now: deps.now,
      }),
    );
    const port = await grpc.listen(config.AUTH_HOST, config.AUTH_PORT);
    setHealth(grpc.health, names, true);
    // Keys cannot be checked without the database: AuthService (and the server) report
    // NOT_SERVING while it is unreachable; the registry keeps serving from memory.
    const storeHealth = watchStoreHealth({
      ping: () => store.ping(),
      onChange: (reachable) => setHealth(grpc.health, [AuthServiceDefinition.fullName], reachable),
      logger,
      intervalMs: deps.storeHealthIntervalMs ?? 5_000,
    });
    logger.info({ port, store: store.dialect }, 'auth service listening');
    return {
      port,
      metricsPort: grpc.metricsPort(),
      store,
      service,
      async stop() {
        storeHealth.stop();
        registry.close();
        await grpc.shutdown(5_000);
        await store.close();
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}
