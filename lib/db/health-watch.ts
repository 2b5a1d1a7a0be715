/**
 * A service's health follows its database: the store is pinged every `intervalMs`; while a ping
 * fails (or takes longer than `timeoutMs`) `onChange(false)` has marked the service NOT_SERVING,
 * and the first ping that succeeds again marks it SERVING. One log line per change, never the
 * error text (it may name hosts or users).
 */
import type { Logger } from 'pino';

export interface StoreHealthWatch {
  stop(): void;
}

export function watchStoreHealth(options: {
  ping: () => Promise<void>;
  onChange: (reachable: boolean) => void;
  logger: Logger;
  intervalMs: number;
  timeoutMs?: number | undefined;
}): StoreHealthWatch {
  const timeoutMs = options.timeoutMs ?? Math.max(1_000, options.intervalMs);
  let reachable = true;
  let running = false;
  const check = async (): Promise<void> => {
    if (running) return;
    running = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      const ok = await Promise.race([
        options.ping().then(() => true, () => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
      ]);
      if (ok !== reachable) {
        reachable = ok;
        if (ok) options.logger.info('database reachable again; serving');
        else options.logger.error('database unreachable; health NOT_SERVING until it answers');
        options.onChange(ok);
      }
    } finally {
      clearTimeout(timer);
      running = false;
    }
  };
  const interval = setInterval(() => void check(), options.intervalMs);
  interval.unref();
  return { stop: () => clearInterval(interval) };
}
