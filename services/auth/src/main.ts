/** Composition root of the auth process (STYLE.md A-13). */
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
