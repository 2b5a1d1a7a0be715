/**
 * One worker as the operator /workers view (metrics port, never the public port) shows it: id,
 * pool, models, owner, state and load.
 */
import type { Worker } from './fleet.js';

export type WorkerState = 'connecting' | 'loading' | 'ready' | 'draining' | 'disconnected' | 'breaker_open';

export function workerState(w: Worker): WorkerState {
  if (!w.connected) return w.status === undefined ? 'connecting' : 'disconnected';
  if (w.status?.draining) return 'draining';
  if (!w.status?.modelLoaded) return 'loading';
  if (w.breaker.state() === 'open') return 'breaker_open';
  return 'ready';
}

export function describeWorker(w: Worker) {
  const s = w.status;
  const room = s ? Math.max(1, s.capacity + s.queueCapacity) : undefined;
  return {
    worker_id: s?.workerId ?? null,
    pool: w.pool,
    address: w.address,
    source: w.source,
    models: w.models ?? [],
    /** The engine's own name for its model (file or upstream name). */
    engine_model: s?.model ?? null,
    owner: w.owner ?? null,
    state: workerState(w),
    connected: w.connected,
    draining: s?.draining ?? false,
    breaker: w.breaker.state(),
    model_loaded: s?.modelLoaded ?? false,
    in_flight: s?.inFlightCount ?? null,
    queued: s?.queuedCount ?? null,
    capacity: s?.capacity ?? null,
    /** (running + queued) / (capacity + queue capacity), as last reported. */
    load: s && room ? Number(((s.inFlightCount + s.queuedCount) / room).toFixed(3)) : null,
  };
}
