/** Composition root of the quota process (STYLE.md A-13). */
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
