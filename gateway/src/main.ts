/**
 * Composition root of the gateway process: environment, logger, signals; the start function is in
 * start.ts. With GATEWAY_PROCESSES > 1 the first process becomes the cluster primary
 * (cluster-primary.ts) and forks the gateway processes, which come back here as cluster workers.
 */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { createLogger } from '../../lib/logging/logger.js';
import { installLeanAsyncResourceBind } from '../../lib/process/lean-async-bind.js';
import { runProcess } from '../../lib/process/run.js';
import { answerSnapshots, primaryChannelOf, reportReady } from './cluster/child.js';
import { PROCESS_COUNT_ENV, PROCESS_INDEX_ENV } from './cluster/primary.js';
import { startClusterPrimary } from './cluster-primary.js';
import { describeWorker } from './fleet/worker-view.js';
import { gatewayProcessCount, loadGatewayConfig } from './config.js';
import { startGateway, type Gateway } from './start.js';

// Every Generate call opens an HTTP/2 stream, and Node's http2 binds an AsyncResource per stream:
// Node's bind spends ~14 µs on a deprecated accessor (lib/process/lean-async-bind.ts).
installLeanAsyncResourceBind();

if (cluster.isWorker) {
  // A gateway process under the primary: the primary serves the metrics port and asks for the drain.
  const index = Number(process.env[PROCESS_INDEX_ENV]);
  const processes = Number(process.env[PROCESS_COUNT_ENV]);
  const channel = primaryChannelOf(process);
  let gateway: Gateway | undefined;
  await runProcess(
    'gateway',
    async () => {
      const config = loadGatewayConfig(process.env);
      const logger = createLogger('gateway', config.LOG_LEVEL).child({ process: index });
      gateway = await startGateway({ ...config, GATEWAY_METRICS_PORT: undefined }, { logger, cluster: { process: index, processes } });
      const { registry } = gateway.metrics;
      const { fleet } = gateway;
      answerSnapshots({ channel, registry, workers: () => fleet.workers.map(describeWorker) });
      const running = gateway;
      return { logger, stop: () => running.stop() };
    },
    {
      repeated: 'ignore',
      onRunning: (stop) => {
        if (gateway) reportReady(channel, { port: gateway.port, grpcPort: gateway.grpcPort }, stop);
      },
    },
  );
} else {
  await runProcess('gateway', async () => {
    const config = loadGatewayConfig(process.env);
    const logger = createLogger('gateway', config.LOG_LEVEL);
    const processes = gatewayProcessCount(config.GATEWAY_PROCESSES, availableParallelism());
    if (processes > 1) return startClusterPrimary(config, processes, { cluster, logger });
    const gateway = await startGateway(config, { logger });
    return { logger, stop: () => gateway.stop() };
  });
}
