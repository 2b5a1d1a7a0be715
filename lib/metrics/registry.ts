/**
 * What every process's metrics build on (prom-client). No module-level state: each call builds a
 * fresh `Registry`; a process's own metrics.ts (gateway/src, services/<name>/src) lists the metrics
 * it produces on it, and its composition root passes the result down. Every series carries a
 * `service` label (registry default label), including Node's default process metrics.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';

export interface RegistryOptions {
  /** Node process metrics (CPU, memory, event loop lag, GC); default true. */
  defaultMetrics?: boolean | undefined;
}

/**
 * Time to first token, from 10 ms up to a minute (cold models, queues). Shared so that the
 * gateway's and the workers' `time_to_first_token_seconds` can be compared bucket by bucket.
 */
export const TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];

/**
 * Sampling interval of the event-loop delay histogram behind `nodejs_eventloop_lag_*` (a repeating
 * libuv timer; its lateness is the delay). prom-client's default of 10 ms wakes every process 100
 * times a second even when idle: with four processes sharing two cores, those wake-ups were ~90 of
 * each process's ~90 voluntary context switches per idle second and most of its idle CPU. At 50 ms
 * a stall of 50 ms or more is always seen, a shorter one when a sample falls inside it.
 */
export const EVENT_LOOP_MONITOR_RESOLUTION_MS = 50;

/** A fresh registry labelled with `service`, with Node's default metrics unless disabled. */
export function createRegistry(service: string, options: RegistryOptions = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (options.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_MONITOR_RESOLUTION_MS });
  }
  return registry;
}
