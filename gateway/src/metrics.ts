/**
 * The gateway's Prometheus metrics: its HTTP requests (lib/metrics/http.ts), time to first token
 * and tokens of the generations it relays, and the state of its circuit breakers. startGateway
 * builds them once (or takes them from its caller) and serves them on GATEWAY_METRICS_PORT.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { createHttpMetrics, type HttpMetrics } from '../../lib/metrics/http.js';
import { createRegistry, TTFT_BUCKETS, type RegistryOptions } from '../../lib/metrics/registry.js';
import type { BreakerState } from './breaker.js';

export interface GatewayMetrics extends HttpMetrics {
  readonly registry: Registry;
  readonly timeToFirstToken: Histogram<'pool'>;
  readonly tokensTotal: Counter<'direction'>;
  readonly breakerState: Gauge<'target'>;
  readonly breakerTransitionsTotal: Counter<'target' | 'state'>;
  readonly quotaAdmissionsTotal: Counter<'source'>;
}

export function createGatewayMetrics(options: RegistryOptions = {}): GatewayMetrics {
  const registry = createRegistry('gateway', options);
  return {
    registry,
    ...createHttpMetrics(registry),
    timeToFirstToken: new Histogram({
      name: 'time_to_first_token_seconds',
      help: 'Time from request start to the first generated token, by hardware pool.',
      labelNames: ['pool'] as const,
      buckets: TTFT_BUCKETS,
      registers: [registry],
    }),
    tokensTotal: new Counter({
      name: 'tokens_total',
      help: 'Tokens of relayed generations: direction="in" (prompt) or "out" (completion).',
      labelNames: ['direction'] as const,
      registers: [registry],
    }),
    breakerState: new Gauge({
      name: 'breaker_state',
      help: 'Circuit breaker state per upstream target: 0 closed, 0.5 half-open, 1 open.',
      labelNames: ['target'] as const,
      // Several gateway processes (GATEWAY_PROCESSES): the most open of their breakers.
      aggregator: 'max',
      registers: [registry],
    }),
    quotaAdmissionsTotal: new Counter({
      name: 'quota_admissions_total',
      help: 'Quota admissions decided by source: "lease" (locally, from a leased block) or "reserve" (one Reserve call).',
      labelNames: ['source'] as const,
      registers: [registry],
    }),
    breakerTransitionsTotal: new Counter({
      name: 'breaker_transitions_total',
      help: 'Circuit breaker transitions per upstream target into state (closed, half-open, open).',
      labelNames: ['target', 'state'] as const,
      registers: [registry],
    }),
  };
}

/** Prompt and completion tokens of one generation (zeros are skipped). */
export function recordTokens(
  metrics: Pick<GatewayMetrics, 'tokensTotal'>,
  usage: { promptTokens: number; completionTokens: number },
): void {
  if (usage.promptTokens > 0) metrics.tokensTotal.inc({ direction: 'in' }, usage.promptTokens);
  if (usage.completionTokens > 0) metrics.tokensTotal.inc({ direction: 'out' }, usage.completionTokens);
}

const BREAKER_STATE_VALUE: Readonly<Record<BreakerState, number>> = { closed: 0, 'half-open': 0.5, open: 1 };

/** Sets the breaker gauge and counts the transition. */
export function recordBreakerState(
  metrics: Pick<GatewayMetrics, 'breakerState' | 'breakerTransitionsTotal'>,
  target: string,
  state: BreakerState,
): void {
  metrics.breakerState.set({ target }, BREAKER_STATE_VALUE[state]);
  metrics.breakerTransitionsTotal.inc({ target, state });
}
