/**
 * runProcess: the shared tail of every main.ts — start, then stop gracefully once on
 * SIGTERM/SIGINT (a second signal forces exit), and exit non-zero on a startup failure.
 */
import type { Logger } from 'pino';

export interface Running {
  logger: Logger;
  stop(): Promise<void>;
}

export interface RunOptions {
  /**
   * Called once the stop path is armed, with the function that starts it: a stop request that
   * does not come as a signal (a gateway process's cluster primary) subscribes here.
   */
  onRunning?: ((stop: () => void) => void) | undefined;
  /**
   * A second stop request forces exit (`exit`, the default) or changes nothing (`ignore`: a
   * gateway process under a cluster primary, which gets Ctrl-C's SIGINT beside the primary's
   * own stop request; the primary is the one that forces).
   */
  repeated?: 'exit' | 'ignore' | undefined;
}

export async function runProcess(name: string, start: () => Promise<Running>, options: RunOptions = {}): Promise<void> {
  let running: Running;
  try {
    running = await start();
  } catch (err) {
    // Config and startup errors carry no secrets; print them plainly for operators.
    process.stderr.write(`${name}: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals | 'stop-request'): void => {
    if (stopping) {
      if (options.repeated === 'ignore') return;
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
  options.onRunning?.(() => onSignal('stop-request'));
  // Under `npm start` the supervisor may itself be killed hard; never outlive it as an orphan.
  if (process.env['XERO_EXIT_WITH_PARENT'] === '1') {
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent) onSignal('SIGTERM');
    }, 1000).unref();
  }
}
