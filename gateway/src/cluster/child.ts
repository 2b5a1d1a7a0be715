/**
 * A gateway process under the cluster primary (primary.ts): it tells the primary when it listens,
 * answers the primary's snapshot requests with its metrics and its `/workers` view (the primary
 * serves GATEWAY_METRICS_PORT for all processes), and drains when the primary says stop.
 */
import type { Registry } from 'prom-client';
import { isToChild, type ToPrimary } from './messages.js';

/** The IPC channel to the primary (the cluster worker's `process`). */
export interface PrimaryChannel {
  send(message: ToPrimary): void;
  on(event: 'message', listener: (message: unknown) => void): void;
}

/** The cluster worker's own process as its channel to the primary. */
export function primaryChannelOf(proc: NodeJS.Process): PrimaryChannel {
  return {
    send: (message) => {
      if (proc.connected) proc.send?.(message);
    },
    on: (event, listener) => {
      proc.on(event, listener);
    },
  };
}

export interface ChildDeps {
  channel: PrimaryChannel;
  registry: Registry;
  workers: () => unknown[];
}

/** Answers snapshot requests from now on. */
export function answerSnapshots(deps: ChildDeps): void {
  deps.channel.on('message', (message) => {
    if (!isToChild(message) || message.xero !== 'snapshot') return;
    const { id } = message;
    deps.registry.getMetricsAsJSON().then(
      (metrics) => deps.channel.send({ xero: 'snapshot', id, metrics, workers: deps.workers() }),
      // A collector that throws: the primary's scrape fails when this process does not answer.
      () => undefined,
    );
  });
}

/** Says the process listens, and calls `stop` when the primary asks for the drain. */
export function reportReady(channel: PrimaryChannel, ports: { port: number; grpcPort: number }, stop: () => void): void {
  channel.on('message', (message) => {
    if (isToChild(message) && message.xero === 'stop') stop();
  });
  channel.send({ xero: 'ready', ...ports });
}
