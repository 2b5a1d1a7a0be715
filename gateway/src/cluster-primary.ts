/**
 * Composition root of the gateway's cluster primary (GATEWAY_PROCESSES > 1; main.ts chooses it):
 * forks the gateway processes (cluster/primary.ts) and serves GATEWAY_METRICS_PORT for all of
 * them (cluster/aggregate.ts). Each gateway process runs main.ts's own path.
 */
import type { Cluster } from 'node:cluster';
import type { Logger } from 'pino';
import { Gauge } from 'prom-client';
import { createRegistry } from '../../lib/metrics/registry.js';
import { startMetricsServer } from '../../lib/metrics/server.js';
import { DEFAULT_BACKOFF } from '../../lib/process/backoff.js';
import type { Running } from '../../lib/process/run.js';
import { clusterMetricsSource, clusterViews } from './cluster/aggregate.js';
import { startGatewayPrimary } from './cluster/primary.js';
import type { GatewayConfig } from './config.js';

export async function startClusterPrimary(config: GatewayConfig, processes: number, deps: { cluster: Cluster; logger: Logger }): Promise<Running> {
  const logger = deps.logger.child({ role: 'primary' });
  const primary = startGatewayPrimary({ cluster: deps.cluster, logger, processes, backoff: DEFAULT_BACKOFF, now: () => Date.now() });
  const { port, grpcPort } = await primary.ready;
  // The primary's own process metrics join the processes' in the aggregate, plus how many run.
  const registry = createRegistry('gateway');
  new Gauge({
    name: 'gateway_processes',
    help: 'Gateway processes under the cluster primary, by state (starting, ready, restarting, stopping, stopped).',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const p of primary.processes()) this.inc({ state: p.state });
    },
  });
  const metricsServer =
    config.GATEWAY_METRICS_PORT === undefined
      ? undefined
      : await startMetricsServer(clusterMetricsSource(primary, registry), config.GATEWAY_HOST, config.GATEWAY_METRICS_PORT, clusterViews(primary)).catch(
          (err: unknown) => {
            primary.kill();
            throw err;
          },
        );
  logger.info({ port, grpcPort, processes, metricsPort: metricsServer?.port }, 'gateway processes listening');
  return {
    logger,
    async stop() {
      try {
        await primary.stop();
      } finally {
        await metricsServer?.close();
      }
    },
  };
}
