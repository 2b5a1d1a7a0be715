/** Composition root of the ledger process: environment in, signals handled by runProcess. */
import { createLogger } from '../../../lib/logging/logger.js';
import { runProcess } from '../../../lib/process/run.js';
import { loadLedgerConfig } from './config.js';
import { startLedgerService } from './start.js';

await runProcess('ledger', async () => {
  const config = loadLedgerConfig(process.env);
  const logger = createLogger('ledger', config.LOG_LEVEL);
  const ledger = await startLedgerService(config, { logger });
  return { logger, stop: () => ledger.stop() };
});
