/**
 * What the gateway's cluster primary (primary.ts) and its gateway processes (child.ts) say to each
 * other over the cluster IPC channel. Every message carries a `xero` tag so that it is never
 * confused with node:cluster's own internal messages.
 */
import type { Registry } from 'prom-client';

/** One registry's `getMetricsAsJSON()` (what prom-client's AggregatorRegistry.aggregate takes). */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** Primary → child: drain and exit (the stop path of a single-process gateway). */
export interface StopMessage {
  xero: 'stop';
}

/** Primary → child: send your metrics (prom-client JSON) and operator views. */
export interface SnapshotRequest {
  xero: 'snapshot';
  id: number;
}

/** Child → primary: listening on both shared ports; it now takes connections. */
export interface ReadyMessage {
  xero: 'ready';
  port: number;
  grpcPort: number;
}

/** Child → primary: the answer to a SnapshotRequest. */
export interface SnapshotMessage {
  xero: 'snapshot';
  id: number;
  /** The child registry's `getMetricsAsJSON()`. */
  metrics: MetricsJson;
  /** The child's operator `/workers` view (its own fleet as it sees it). */
  workers: unknown[];
}

export type ToChild = StopMessage | SnapshotRequest;
export type ToPrimary = ReadyMessage | SnapshotMessage;

function tagged(message: unknown): message is { xero: unknown } {
  return typeof message === 'object' && message !== null && 'xero' in message;
}

export function isToChild(message: unknown): message is ToChild {
  return tagged(message) && (message.xero === 'stop' || message.xero === 'snapshot');
}

export function isToPrimary(message: unknown): message is ToPrimary {
  return tagged(message) && (message.xero === 'ready' || message.xero === 'snapshot');
}
