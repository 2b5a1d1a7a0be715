/**
 * What the cluster primary serves on GATEWAY_METRICS_PORT for all gateway processes: `/metrics`
 * aggregated with prom-client's AggregatorRegistry (the same names as a single process's; each
 * metric combined by its `aggregator`: counters and histograms summed, `breaker_state` the
 * highest, Node's event-loop lag averaged, …), the primary's own process metrics included; and
 * the operator views `/workers` (every process's view of the fleet, each entry naming its
 * process) and `/processes` (each process, its state, restarts and HTTP requests handled).
 * A process that does not answer in time fails the scrape rather than making the sums dip; the
 * counters and histograms of a process that exited stay in the sums as it last reported them
 * (its replacement counts from zero), so a restart does not look like a counter reset either.
 */
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { OperatorViews, MetricsSource } from '../../../lib/metrics/server.js';
import type { MetricsJson } from './messages.js';
import type { GatewayPrimary } from './primary.js';

/** How long the primary waits for every process's answer to one scrape. */
export const SNAPSHOT_TIMEOUT_MS = 3_000;

/** Requests a process's `http_requests_total` counted (every route and status). */
function httpRequests(metrics: MetricsJson): number {
  const counter = metrics.find((m) => m.name === 'http_requests_total');
  return counter ? counter.values.reduce((sum, v) => sum + v.value, 0) : 0;
}

/** Only what only grows: counters and histograms (gauges of a dead process mean nothing). */
function monotonic(metrics: MetricsJson): MetricsJson {
  return metrics.filter((m) => (m.type as unknown) === 'counter' || (m.type as unknown) === 'histogram');
}

export function clusterMetricsSource(primary: GatewayPrimary, own: Registry): MetricsSource {
  /** The last metrics each process (by pid) reported, and the sums of the processes that exited. */
  let last = new Map<number, MetricsJson>();
  let retired: MetricsJson = [];
  // One scrape at a time: two at once would both retire the same exited process.
  let queue: Promise<unknown> = Promise.resolve();
  const render = async (): Promise<string> => {
    const [snapshots, mine] = await Promise.all([primary.snapshots(SNAPSHOT_TIMEOUT_MS), own.getMetricsAsJSON()]);
    const answered = new Map(snapshots.map((s) => [s.pid, s.metrics]));
    const gone = [...last].filter(([pid]) => !answered.has(pid)).map(([, metrics]) => monotonic(metrics));
    if (gone.length > 0) retired = await AggregatorRegistry.aggregate([retired, ...gone]).getMetricsAsJSON();
    last = answered;
    return AggregatorRegistry.aggregate([mine, retired, ...snapshots.map((s) => s.metrics)]).metrics();
  };
  return {
    contentType: own.contentType,
    metrics() {
      const run = queue.then(render);
      queue = run.catch(() => undefined);
      return run;
    },
  };
}

export function clusterViews(primary: GatewayPrimary): OperatorViews {
  return {
    '/workers': async () => {
      const snapshots = await primary.snapshots(SNAPSHOT_TIMEOUT_MS);
      return {
        workers: snapshots.flatMap((s) => s.workers.map((w) => ({ process: s.process, ...(w as Record<string, unknown>) }))),
      };
    },
    '/processes': async () => {
      const snapshots = await primary.snapshots(SNAPSHOT_TIMEOUT_MS);
      return {
        processes: primary.processes().map((p) => {
          const snapshot = snapshots.find((s) => s.process === p.process);
          return { ...p, http_requests: snapshot ? httpRequests(snapshot.metrics) : null };
        }),
      };
    },
  };
}
