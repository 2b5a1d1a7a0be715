/** Composition root of the gateway process: environment, logger, signals; the start function is in start.ts. */
import { createLogger } from '../../lib/logging/logger.js';
import { runProcess } from '../../lib/process/run.js';
import { loadGatewayConfig } from './config.js';
import { startGateway } from './start.js';

await runProcess('gateway', async () => {
  const config = loadGatewayConfig(process.env);
  const logger = createLogger('gateway', config.LOG_LEVEL);
  const gateway = await startGateway(config, { logger });
  return { logger, stop: () => gateway.stop() };
});
