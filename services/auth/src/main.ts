/**
 * Composition root of the auth process: reads the environment once, builds the pino logger and
 * starts the service (start.ts); lib/process/run.ts stops it on SIGTERM/SIGINT.
 */
import { createLogger } from '../../../lib/logging/logger.js';
import { runProcess } from '../../../lib/process/run.js';
import { startAuthService } from './start.js';
import { loadAuthConfig } from './config.js';

await runProcess('auth', async () => {
  const config = loadAuthConfig(process.env);
  const logger = createLogger('auth', config.LOG_LEVEL);
  const auth = await startAuthService(config, { logger });
  return { logger, stop: () => auth.stop() };
});
