/**
 * runProcess: the shared tail of every main.ts — start, then stop gracefully once on
 * SIGTERM/SIGINT (a second signal forces exit), and exit non-zero on a startup failure.
 */
import type { Logger } from 'pino';

export interface Running {
  logger: Logger;
  stop(): Promise<void>;
}

export async function runProcess(name: string, start: () => Promise<Running>): Promise<void> {
  let running: Running;
  try {
    running = await start();
  } catch (err) {
    // Config and startup errors carry no secrets; print them plainly for operators.
    process.stderr.write(`${name}: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      running.logger.warn({ signal }, 'second signal, exiting now');
      process.exit(1);
    }
    stopping = true;
    running.logger.info({ signal }, 'shutting down');
    running.stop().then(
      () => {
        running.logger.info('stopped');
        process.exit(process.exitCode ?? 0);
      },
      (err: unknown) => {
        running.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // Under `npm start` the supervisor may itself be killed hard; never outlive it as an orphan.
  if (process.env['XERO_EXIT_WITH_PARENT'] === '1') {
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent) onSignal('SIGTERM');
    }, 1000).unref();
  }
}
