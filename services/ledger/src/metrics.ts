/**
 * The ledger service's Prometheus metrics: its handled gRPC calls (lib/metrics/grpc.ts). Served on
 * LEDGER_METRICS_PORT by startLedgerService.
 */
import type { Registry } from 'prom-client';
import { createGrpcServerMetrics, type GrpcServerMetrics } from '../../../lib/metrics/grpc.js';
import { createRegistry, type RegistryOptions } from '../../../lib/metrics/registry.js';

export interface LedgerMetrics extends GrpcServerMetrics {
  readonly registry: Registry;
}

export function createLedgerMetrics(options: RegistryOptions = {}): LedgerMetrics {
  const registry = createRegistry('ledger', options);
  return { registry, ...createGrpcServerMetrics(registry) };
}
