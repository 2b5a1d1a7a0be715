/**
 * startLedgerService: opens the store (SQLite or PostgreSQL), serves LedgerService over gRPC and
 * runs the retention delete (at start, then every LEDGER_RETENTION_INTERVAL_MS). No signal
 * handling: main.ts owns that. Tests call it on port 0 with `LEDGER_SQLITE_PATH=:memory:`.
 */
import type { Logger } from 'pino';
import { LedgerServiceDefinition } from '../../../gen/xerotier/ledger/v1/ledger_service.js';
import { createGrpcServer, setHealth } from '../../../lib/grpc/server.js';
import { createLedgerMetrics } from './metrics.js';
import { grpcTls } from '../../../lib/grpc/tls.js';
import { watchStoreHealth, type StoreHealthWatch } from '../../../lib/db/health-watch.js';
import type { LedgerConfig } from './config.js';
import { createLedgerService } from './ledger-service.js';
import { openLedgerStore, type StoreLocation } from './stores/kysely-store.js';
import type { LedgerStore } from './stores/store.js';

export interface RunningLedgerService {
  port: number;
  metricsPort: number | undefined;
  store: LedgerStore;
  /** Runs the retention delete now; returns the rows deleted. */
  applyRetention(): Promise<number>;
  /** Stops serving (bounded), then closes the database. */
  stop(): Promise<void>;
}

const DAY_MS = 86_400_000;

export function storeLocation(config: LedgerConfig): StoreLocation {
  return config.LEDGER_DATABASE_URL === undefined
    ? { dialect: 'sqlite', path: config.LEDGER_SQLITE_PATH }
    : { dialect: 'postgres', url: config.LEDGER_DATABASE_URL, schema: config.LEDGER_DATABASE_SCHEMA };
}

export async function startLedgerService(
  config: LedgerConfig,
  deps: {
    logger: Logger;
    now?: (() => number) | undefined;
    /** How often the database is pinged for the health status (default 5 s). */
    storeHealthIntervalMs?: number | undefined;
  },
): Promise<RunningLedgerService> {
  const { logger } = deps;
  const now = deps.now ?? Date.now;
  const store = await openLedgerStore(storeLocation(config), logger);
  let retentionTimer: NodeJS.Timeout | undefined;
  let storeHealth: StoreHealthWatch | undefined;
  try {
    const names = [LedgerServiceDefinition.fullName];
    const grpc = createGrpcServer({
      logger,
      serviceNames: names,
      serviceToken: config.SERVICE_TOKEN,
      metrics: createLedgerMetrics(),
      tls: grpcTls(config),
      metricsPort: config.LEDGER_METRICS_PORT,
    });
    grpc.server.add(LedgerServiceDefinition, createLedgerService(store));
    const port = await grpc.listen(config.LEDGER_HOST, config.LEDGER_PORT);
    setHealth(grpc.health, names, true);
    // NOT_SERVING while the database is unreachable (gateways keep their records meanwhile).
    storeHealth = watchStoreHealth({
      ping: () => store.ping(),
      onChange: (reachable) => setHealth(grpc.health, names, reachable),
      logger,
      intervalMs: deps.storeHealthIntervalMs ?? 5_000,
    });

    const applyRetention = async (): Promise<number> => {
      if (config.LEDGER_RETENTION_DAYS === 0) return 0;
      // A whole UTC day: raw rows and their rollup hours and days leave together.
      const cutoff = now() - config.LEDGER_RETENTION_DAYS * DAY_MS;
      const deleted = await store.deleteBefore(cutoff - (cutoff % DAY_MS));
      if (deleted > 0) logger.info({ deleted, retentionDays: config.LEDGER_RETENTION_DAYS }, 'ledger retention applied');
      return deleted;
    };
    const retention = (): void => {
      applyRetention().catch((err: unknown) => logger.error({ err }, 'ledger retention failed'));
    };
    if (config.LEDGER_RETENTION_DAYS > 0) {
      retention();
      retentionTimer = setInterval(retention, config.LEDGER_RETENTION_INTERVAL_MS);
      retentionTimer.unref();
    }
    logger.info({ port, store: store.dialect, retentionDays: config.LEDGER_RETENTION_DAYS }, 'ledger service listening');
    return {
      port,
      metricsPort: grpc.metricsPort(),
      store,
      applyRetention,
      async stop() {
        clearInterval(retentionTimer);
        storeHealth?.stop();
        await grpc.shutdown(5_000);
        await store.close();
      },
    };
  } catch (err) {
    clearInterval(retentionTimer);
    storeHealth?.stop();
    await store.close();
    throw err;
  }
}
