/**
 * Composition root of the quota process: reads the environment once, builds the pino logger and
 * starts the service (start.ts); lib/process/run.ts stops it on SIGTERM/SIGINT.
 */
import { createLogger } from '../../../lib/logging/logger.js';
import { runProcess } from '../../../lib/process/run.js';
import { startQuotaService } from './start.js';
import { loadQuotaConfig } from './config.js';

await runProcess('quota', async () => {
  const config = loadQuotaConfig(process.env);
  const logger = createLogger('quota', config.LOG_LEVEL);
  const server = await startQuotaService(config, { logger });
  return { logger, stop: () => server.stop() };
});
