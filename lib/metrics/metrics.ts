/**
 * Prometheus metrics for every process (prom-client). No module-level state (STYLE.md A-13):
 * each factory call builds a fresh `Registry` with its own metric objects, and the composition
 * root passes the result down. Every series carries a `service` label (registry default label),
 * including Node's default process metrics.
 *
 * Per-process factories register only the metrics that process produces, so a scrape never shows
 * a misleading zero (e.g. `quota_store_errors_total 0` on the gateway); `createMetrics` builds
 * the full set (tests, single-process tools).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface MetricsOptions {
  /** Node process metrics (CPU, memory, event loop lag, GC); default true. */
  defaultMetrics?: boolean | undefined;
  /**
   * Inference worker: where `worker_in_flight`, `worker_queue` and `engine_tokens_per_second`
   * read their values at scrape time (e.g. the service's status()); undefined = not yet known.
   * Without it the gauges are set with `recordWorkerLoad`.
   */
  workerLoad?: (() => WorkerLoad | undefined) | undefined;
}

/** Request/stream durations: from 10 ms up to 5 minutes (long streams). */
export const HTTP_DURATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Time to first token: from 10 ms up to a minute (cold models, queues). */
export const TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];

/** One worker's load signals (what GetStatus reports). */
export interface WorkerLoad {
  worker: string;
  inFlight: number;
  queued: number;
  tokensPerSecond?: number | undefined;
}

/** A gauge of one worker signal that, when a load source is given, reads it at every scrape. */
function workerGauge(
  r: Registry,
  options: MetricsOptions,
  name: string,
  help: string,
  pick: (load: WorkerLoad) => number | undefined,
): Gauge<'worker'> {
  const source = options.workerLoad;
  return new Gauge({
    name,
    help,
    labelNames: ['worker'] as const,
    registers: [r],
    ...(source && {
      collect(this: Gauge<'worker'>) {
        const load = source();
        const value = load && pick(load);
        if (load && value !== undefined) this.set({ worker: load.worker }, value);
      },
    }),
  });
}

const factories = {
  httpRequestsTotal: (r: Registry) =>
    new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests handled, by route template and status code.',
      labelNames: ['route', 'status'] as const,
      registers: [r],
    }),
  httpRequestDuration: (r: Registry) =>
    new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration in seconds (streams: until the last byte), by route template.',
      labelNames: ['route'] as const,
      buckets: HTTP_DURATION_BUCKETS,
      registers: [r],
    }),
  timeToFirstToken: (r: Registry) =>
    new Histogram({
      name: 'time_to_first_token_seconds',
      help: 'Time from request start to the first generated token, by hardware pool.',
      labelNames: ['pool'] as const,
      buckets: TTFT_BUCKETS,
      registers: [r],
    }),
  tokensTotal: (r: Registry) =>
    new Counter({
      name: 'tokens_total',
      help: 'Tokens processed: direction="in" (prompt) or "out" (completion).',
      labelNames: ['direction'] as const,
      registers: [r],
    }),
  quotaDecisionsTotal: (r: Registry) =>
    new Counter({
      name: 'quota_decisions_total',
      help: 'Quota decisions by decision (allow, deny) and tier.',
      labelNames: ['decision', 'tier'] as const,
      registers: [r],
    }),
  quotaStoreErrorsTotal: (r: Registry) =>
    new Counter({
      name: 'quota_store_errors_total',
      help: 'Failed operations against the quota store (memory or Redis).',
      registers: [r],
    }),
  breakerState: (r: Registry) =>
    new Gauge({
      name: 'breaker_state',
      help: 'Circuit breaker state per upstream target: 0 closed, 0.5 half-open, 1 open.',
      labelNames: ['target'] as const,
      registers: [r],
    }),
  breakerTransitionsTotal: (r: Registry) =>
    new Counter({
      name: 'breaker_transitions_total',
      help: 'Circuit breaker transitions per upstream target into state (closed, half-open, open).',
      labelNames: ['target', 'state'] as const,
      registers: [r],
    }),
  workerInFlight: (r: Registry, o: MetricsOptions) =>
    workerGauge(r, o, 'worker_in_flight', 'Generations running on an inference worker.', (l) => l.inFlight),
  workerQueue: (r: Registry, o: MetricsOptions) =>
    workerGauge(r, o, 'worker_queue', 'Requests waiting in an inference worker queue.', (l) => l.queued),
  engineTokensPerSecond: (r: Registry, o: MetricsOptions) =>
    workerGauge(
      r,
      o,
      'engine_tokens_per_second',
      'Recent generation speed of an inference worker engine (tokens per second).',
      (l) => l.tokensPerSecond,
    ),
  grpcServerHandledTotal: (r: Registry) =>
    new Counter({
      name: 'grpc_server_handled_total',
      help: 'gRPC calls completed on the server, by method path and status code name.',
      labelNames: ['method', 'code'] as const,
      registers: [r],
    }),
} satisfies Record<string, (registry: Registry, options: MetricsOptions) => unknown>;

export type MetricName = keyof typeof factories;

/** The registry, the service label, and the requested metric objects. */
export type MetricsOf<K extends MetricName> = {
  readonly registry: Registry;
  readonly service: string;
} & { readonly [P in K]: ReturnType<(typeof factories)[P]> };

/** Every metric (what `createMetrics` returns); helpers take `Pick`s of it. */
export type Metrics = MetricsOf<MetricName>;

export const ALL_METRICS = Object.keys(factories) as MetricName[];
export const GATEWAY_METRICS = [
  'httpRequestsTotal',
  'httpRequestDuration',
  'timeToFirstToken',
  'tokensTotal',
  'breakerState',
  'breakerTransitionsTotal',
] as const satisfies readonly MetricName[];
export const AUTH_METRICS = ['grpcServerHandledTotal'] as const satisfies readonly MetricName[];
export const QUOTA_METRICS = [
  'grpcServerHandledTotal',
  'quotaDecisionsTotal',
  'quotaStoreErrorsTotal',
] as const satisfies readonly MetricName[];
export const INFERENCE_METRICS = [
  'grpcServerHandledTotal',
  'timeToFirstToken',
  'tokensTotal',
  'workerInFlight',
  'workerQueue',
  'engineTokensPerSecond',
] as const satisfies readonly MetricName[];

export type GatewayMetrics = MetricsOf<(typeof GATEWAY_METRICS)[number]>;
export type AuthMetrics = MetricsOf<(typeof AUTH_METRICS)[number]>;
export type QuotaMetrics = MetricsOf<(typeof QUOTA_METRICS)[number]>;
export type InferenceMetrics = MetricsOf<(typeof INFERENCE_METRICS)[number]>;

/** A fresh registry labelled with `service`, with Node's default metrics unless disabled. */
export function createRegistry(service: string, options: MetricsOptions = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}

/** Builds the named metrics on a fresh registry. */
export function buildMetrics<K extends MetricName>(
  service: string,
  names: readonly K[],
  options: MetricsOptions = {},
): MetricsOf<K> {
  const registry = createRegistry(service, options);
  const metrics: Record<string, unknown> = { registry, service };
  for (const name of names) metrics[name] = factories[name](registry, options);
  return metrics as MetricsOf<K>;
}

/** Every metric on one fresh registry. */
export function createMetrics(service: string, options?: MetricsOptions): Metrics {
  return buildMetrics(service, ALL_METRICS, options);
}

export const createGatewayMetrics = (options?: MetricsOptions): GatewayMetrics =>
  buildMetrics('gateway', GATEWAY_METRICS, options);
export const createAuthMetrics = (options?: MetricsOptions): AuthMetrics =>
  buildMetrics('auth', AUTH_METRICS, options);
export const createQuotaMetrics = (options?: MetricsOptions): QuotaMetrics =>
  buildMetrics('quota', QUOTA_METRICS, options);
export const createInferenceMetrics = (options?: MetricsOptions): InferenceMetrics =>
  buildMetrics('inference', INFERENCE_METRICS, options);

// ── helpers: typed label values, one line at each call site ───────────────────────────────

export type TokenDirection = 'in' | 'out';
export type QuotaDecision = 'allow' | 'deny';
export type BreakerStateName = 'closed' | 'half-open' | 'open';

export const BREAKER_STATE_VALUE: Readonly<Record<BreakerStateName, number>> = {
  closed: 0,
  'half-open': 0.5,
  open: 1,
};

/** One finished HTTP request (the express middleware in http.ts calls this). */
export function recordHttpRequest(
  metrics: Pick<Metrics, 'httpRequestsTotal' | 'httpRequestDuration'>,
  route: string,
  status: number | string,
  seconds: number,
): void {
  metrics.httpRequestsTotal.inc({ route, status: String(status) });
  metrics.httpRequestDuration.observe({ route }, seconds);
}

/** Prompt and completion tokens of one generation (zeros are skipped). */
export function recordTokens(
  metrics: Pick<Metrics, 'tokensTotal'>,
  usage: { promptTokens: number; completionTokens: number },
): void {
  if (usage.promptTokens > 0) metrics.tokensTotal.inc({ direction: 'in' }, usage.promptTokens);
  if (usage.completionTokens > 0) metrics.tokensTotal.inc({ direction: 'out' }, usage.completionTokens);
}

export function recordQuotaDecision(
  metrics: Pick<Metrics, 'quotaDecisionsTotal'>,
  decision: QuotaDecision,
  tier: string,
): void {
  metrics.quotaDecisionsTotal.inc({ decision, tier });
}

/** Sets the breaker gauge and counts the transition. */
export function recordBreakerState(
  metrics: Pick<Metrics, 'breakerState' | 'breakerTransitionsTotal'>,
  target: string,
  state: BreakerStateName,
): void {
  metrics.breakerState.set({ target }, BREAKER_STATE_VALUE[state]);
  metrics.breakerTransitionsTotal.inc({ target, state });
}

/** What opossum's CircuitBreaker offers (structural, so lib/metrics does not import opossum). */
export interface BreakerEvents {
  on(event: 'open' | 'halfOpen' | 'close', listener: () => void): unknown;
  removeListener(event: 'open' | 'halfOpen' | 'close', listener: () => void): unknown;
  readonly opened?: boolean;
  readonly halfOpen?: boolean;
}

/**
 * Follows an opossum breaker: sets `breaker_state{target}` to its current state now (without
 * counting a transition) and on every `open`/`halfOpen`/`close` event. Returns the unsubscribe.
 */
export function observeBreaker(
  metrics: Pick<Metrics, 'breakerState' | 'breakerTransitionsTotal'>,
  target: string,
  breaker: BreakerEvents,
): () => void {
  const initial: BreakerStateName = breaker.opened ? 'open' : breaker.halfOpen ? 'half-open' : 'closed';
  metrics.breakerState.set({ target }, BREAKER_STATE_VALUE[initial]);
  const onOpen = (): void => recordBreakerState(metrics, target, 'open');
  const onHalfOpen = (): void => recordBreakerState(metrics, target, 'half-open');
  const onClose = (): void => recordBreakerState(metrics, target, 'closed');
  breaker.on('open', onOpen);
  breaker.on('halfOpen', onHalfOpen);
  breaker.on('close', onClose);
  return () => {
    breaker.removeListener('open', onOpen);
    breaker.removeListener('halfOpen', onHalfOpen);
    breaker.removeListener('close', onClose);
  };
}

/** The load signals an inference worker reports (GetStatus), as gauges. */
export function recordWorkerLoad(
  metrics: Pick<Metrics, 'workerInFlight' | 'workerQueue' | 'engineTokensPerSecond'>,
  load: WorkerLoad,
): void {
  const worker = load.worker;
  metrics.workerInFlight.set({ worker }, load.inFlight);
  metrics.workerQueue.set({ worker }, load.queued);
  if (load.tokensPerSecond !== undefined) metrics.engineTokensPerSecond.set({ worker }, load.tokensPerSecond);
}
