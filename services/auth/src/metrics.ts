/**
 * The auth service's Prometheus metrics: its handled gRPC calls (lib/metrics/grpc.ts), served on
 * AUTH_METRICS_PORT by startAuthService.
 */
import type { Registry } from 'prom-client';
import { createGrpcServerMetrics, type GrpcServerMetrics } from '../../../lib/metrics/grpc.js';
import { createRegistry, type RegistryOptions } from '../../../lib/metrics/registry.js';

export interface AuthMetrics extends GrpcServerMetrics {
  readonly registry: Registry;
}

export function createAuthMetrics(options: RegistryOptions = {}): AuthMetrics {
  const registry = createRegistry('auth', options);
  return { registry, ...createGrpcServerMetrics(registry) };
}
