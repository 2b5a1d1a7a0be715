/**
 * An inference worker's Prometheus metrics: its handled gRPC calls (lib/metrics/grpc.ts), time to
 * first token and tokens of its generations, and its load (in flight, queued, recent speed), read
 * from the worker at every scrape. Served on INFERENCE_METRICS_PORT by startInferenceWorker.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { createGrpcServerMetrics, type GrpcServerMetrics } from '../../../lib/metrics/grpc.js';
import { createRegistry, TTFT_BUCKETS, type RegistryOptions } from '../../../lib/metrics/registry.js';

/** One worker's load signals (what GetStatus reports). */
export interface WorkerLoad {
  worker: string;
  inFlight: number;
  queued: number;
  tokensPerSecond?: number | undefined;
}

export interface InferenceMetricsOptions extends RegistryOptions {
  /** The worker's load now; undefined while the worker is not built yet (no sample then). */
  workerLoad: () => WorkerLoad | undefined;
}

export interface InferenceMetrics extends GrpcServerMetrics {
  readonly registry: Registry;
  readonly timeToFirstToken: Histogram<'pool'>;
  readonly tokensTotal: Counter<'direction'>;
}

/** A gauge of one load signal, read from the worker at every scrape. */
function workerGauge(
  registry: Registry,
  workerLoad: () => WorkerLoad | undefined,
  name: string,
  help: string,
  pick: (load: WorkerLoad) => number | undefined,
): void {
  new Gauge({
    name,
    help,
    labelNames: ['worker'] as const,
    registers: [registry],
    collect(this: Gauge<'worker'>) {
      const load = workerLoad();
      const value = load && pick(load);
      if (load && value !== undefined) this.set({ worker: load.worker }, value);
    },
  });
}

export function createInferenceMetrics(options: InferenceMetricsOptions): InferenceMetrics {
  const registry = createRegistry('inference', options);
  const load = options.workerLoad;
  workerGauge(registry, load, 'worker_in_flight', 'Generations running on an inference worker.', (l) => l.inFlight);
  workerGauge(registry, load, 'worker_queue', 'Requests waiting in an inference worker queue.', (l) => l.queued);
  workerGauge(
    registry,
    load,
    'engine_tokens_per_second',
    'Recent generation speed of an inference worker engine (tokens per second).',
    (l) => l.tokensPerSecond,
  );
  return {
    registry,
    ...createGrpcServerMetrics(registry),
    timeToFirstToken: new Histogram({
      name: 'time_to_first_token_seconds',
      help: 'Time from request start to the first generated token, by hardware pool.',
      labelNames: ['pool'] as const,
      buckets: TTFT_BUCKETS,
      registers: [registry],
    }),
    tokensTotal: new Counter({
      name: 'tokens_total',
      help: 'Tokens processed by this worker: direction="in" (prompt) or "out" (completion).',
      labelNames: ['direction'] as const,
      registers: [registry],
    }),
  };
}

/** Prompt and completion tokens of one generation (zeros are skipped). */
export function recordTokens(
  metrics: Pick<InferenceMetrics, 'tokensTotal'>,
  usage: { promptTokens: number; completionTokens: number },
): void {
  if (usage.promptTokens > 0) metrics.tokensTotal.inc({ direction: 'in' }, usage.promptTokens);
  if (usage.completionTokens > 0) metrics.tokensTotal.inc({ direction: 'out' }, usage.completionTokens);
}
