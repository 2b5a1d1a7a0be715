/**
 * Opening a generation on a worker: pick a worker, open the stream and wait for its first token
 * under the worker's breaker. Until the first token the request may move to another worker
 * (worker failure, capacity, time-to-first-token timeout); after it, never.
 */
import type { GenerateRequest, GenerateResponse, Start } from '../../gen/xerotier/inference/v1/inference_service.js';
import { AppError, isAppError } from '../../lib/errors/app-error.js';
import { callOptions } from '../../lib/grpc/client.js';
import type { Worker, WorkerPool } from './worker-pool.js';

export interface OpenGeneration {
  worker: Worker;
  start: Start;
  /** The first event after `start` (a delta or the final). */
  first: GenerateResponse;
  /** The rest of the stream. */
  rest: AsyncIterator<GenerateResponse>;
  /** Must be called exactly once when the caller is done with the stream. */
  release(): void;
}

export interface OpenOptions {
  pool: WorkerPool;
  pools: readonly string[];
  request: GenerateRequest;
  requestId: string;
  /** Aborted when the client leaves, the deadline passes or the gateway stops. */
  signal: AbortSignal;
  /** The request's deadline, propagated to the worker as the gRPC deadline. */
  deadline: Date;
  ttftTimeoutMs: number;
  maxAttempts: number;
}

class TtftTimeout extends Error {}

export async function openGeneration(options: OpenOptions): Promise<OpenGeneration> {
  const tried = new Set<Worker>();
  let lastError: unknown;
  for (let attempt = 0; attempt < options.maxAttempts; attempt++) {
    let worker: Worker;
    try {
      worker = options.pool.pick(options.pools, tried);
    } catch (err) {
      // Nothing left to try: report the worker failure we saw rather than "no worker".
      throw attempt > 0 && lastError !== undefined ? lastError : err;
    }
    tried.add(worker);
    const attemptAbort = new AbortController();
    const onAbort = (): void => attemptAbort.abort(options.signal.reason);
    options.signal.addEventListener('abort', onAbort, { once: true });
    worker.localInFlight += 1;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      worker.localInFlight -= 1;
      options.signal.removeEventListener('abort', onAbort);
      attemptAbort.abort();
    };
    try {
      const opened = await worker.breaker.run(() => firstToken(worker, options, attemptAbort));
      return { worker, ...opened, release };
    } catch (err) {
      release();
      if (options.signal.aborted) throw err;
      lastError = err;
      if (!movable(err)) throw err;
    }
  }
  throw lastError ?? new AppError('unavailable', 'No inference worker could take the request.', { code: 'no_healthy_worker', retryAfterSeconds: 1 });
}

async function firstToken(worker: Worker, options: OpenOptions, attemptAbort: AbortController) {
  const timer = setTimeout(() => attemptAbort.abort(new TtftTimeout()), options.ttftTimeoutMs);
  try {
    const rest = worker.client
      .generate(options.request, callOptions(options.requestId, attemptAbort.signal, options.deadline))
      [Symbol.asyncIterator]();
    let start: Start | undefined;
    for (;;) {
      const next = await rest.next();
      if (next.done) throw new AppError('internal', 'worker closed the stream before answering');
      if (next.value.start) {
        start = next.value.start;
        continue;
      }
      if (!start) throw new AppError('internal', 'worker did not open the stream properly');
      return { start, first: next.value, rest };
    }
  } catch (err) {
    if (attemptAbort.signal.reason instanceof TtftTimeout) {
      throw new AppError('timeout', 'The worker did not produce a first token in time.', { code: 'upstream_timeout' });
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Worker-side failures that another worker may not have. Caller errors stay where they are. */
function movable(err: unknown): boolean {
  if (!isAppError(err)) return true;
  return err.kind === 'unavailable' || err.kind === 'internal' || err.kind === 'timeout';
}
