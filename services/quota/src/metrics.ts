/**
 * The quota service's Prometheus metrics: its handled gRPC calls (lib/metrics/grpc.ts), its
 * decisions per tier, and failed calls to its store (memory or Redis). Served on
 * QUOTA_METRICS_PORT by startQuotaService.
 */
import { Counter, type Registry } from 'prom-client';
import { createGrpcServerMetrics, type GrpcServerMetrics } from '../../../lib/metrics/grpc.js';
import { createRegistry, type RegistryOptions } from '../../../lib/metrics/registry.js';

export interface QuotaMetrics extends GrpcServerMetrics {
  readonly registry: Registry;
  readonly quotaDecisionsTotal: Counter<'decision' | 'tier'>;
  readonly quotaStoreErrorsTotal: Counter;
  readonly quotaLeasesTotal: Counter<'outcome' | 'tier'>;
}

export function createQuotaMetrics(options: RegistryOptions = {}): QuotaMetrics {
  const registry = createRegistry('quota', options);
  return {
    registry,
    ...createGrpcServerMetrics(registry),
    quotaDecisionsTotal: new Counter({
      name: 'quota_decisions_total',
      help: 'Quota decisions by decision (allow, deny) and tier.',
      labelNames: ['decision', 'tier'] as const,
      registers: [registry],
    }),
    quotaLeasesTotal: new Counter({
      name: 'quota_leases_total',
      help: 'Lease requests by outcome (granted, refused: the key is too close to its limit) and tier.',
      labelNames: ['outcome', 'tier'] as const,
      registers: [registry],
    }),
    quotaStoreErrorsTotal: new Counter({
      name: 'quota_store_errors_total',
      help: 'Failed operations against the quota store (memory or Redis).',
      registers: [registry],
    }),
  };
}

export function recordQuotaDecision(
  metrics: Pick<QuotaMetrics, 'quotaDecisionsTotal'>,
  decision: 'allow' | 'deny',
  tier: string,
): void {
  metrics.quotaDecisionsTotal.inc({ decision, tier });
}
