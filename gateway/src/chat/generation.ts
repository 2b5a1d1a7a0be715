/**
 * The whole life of one Generate call on a worker: pick a worker, open the stream and wait for
 * its first token under the worker's breaker (until then the request may move to another worker
 * after a worker-side failure or a time-to-first-token timeout; after it, never), relay the
 * events, drain the call's end, release the worker.
 */
import type { GenerateRequest, GenerateResponse, Start } from '../../../gen/xerotier/inference/v1/inference_service.js';
import { prefixBlockHashes } from '../../../lib/chat/prefix-blocks.js';
import { estimatePromptTokens } from '../../../lib/chat/prompt-tokens.js';
import { AppError } from '../../../lib/errors/app-error.js';
import { CallCancel } from '../../../lib/grpc/call-cancel.js';
import { callOptions } from '../../../lib/grpc/client.js';
import { movableBeforeFirstToken, ttftTimeout } from '../failure-policy.js';
import type { Worker, Fleet, RouteRequest, RoutingRequest } from '../fleet/fleet.js';

export interface Generation {
  worker: Worker;
  start: Start;
  /**
   * The events after `start`: deltas, then the final. Read at most once; leaving the loop early
   * cancels the call on the worker.
   */
  events: AsyncIterable<GenerateResponse>;
  /** Must be called exactly once when the caller is done with the stream. */
  release(): void;
}

/** What follows the request's end: an attempt's cancellation (an AbortController is one too). */
export interface Abortable {
  abort(reason: unknown): void;
}

/**
 * The end of the request, as an attempt follows it: the attempt's own cancellation is aborted
 * with the request's reason when the request ends (no listener, no controller of the request's own).
 */
export interface RequestEnd {
  /** True once the request ended. */
  readonly aborted: boolean;
  /** Aborts `follower` with the request's reason when the request ends (at once if it has), until unfollow. */
  follow(follower: Abortable): void;
  unfollow(follower: Abortable): void;
}

export interface GenerationOptions {
  fleet: Fleet;
  /** Which workers may serve the request (pools, model, project). */
  route: RouteRequest;
  request: GenerateRequest;
  requestId: string;
  /** Ends when the client leaves, the deadline passes or the gateway stops. */
  signal: RequestEnd;
  /** The request's deadline, propagated to the worker as the gRPC deadline. */
  deadline: Date;
  ttftTimeoutMs: number;
  maxAttempts: number;
  /** For the routing pipeline: the calling project and whether its tier is Free. */
  routing: { project: string; free: boolean };
  /** Sees every event relayed (after `start`); restarts the idle timer, counts tokens. */
  onEvent(event: GenerateResponse): void;
}

class TtftTimeout extends Error {}

/**
 * The reason an attempt's cancellation is aborted with once the caller is done with it: shared,
 * and never thrown to a caller (the stream is over or abandoned by then).
 */
const RELEASED = new DOMException('The generation was released.', 'AbortError');

export async function openGeneration(options: GenerationOptions): Promise<Generation> {
  const tried = new Set<Worker>();
  let lastError: unknown;
  const { router } = options.fleet;
  // What the open stream's closures need, read out of `options` so that they do not keep the
  // request (its messages) alive for as long as the stream is open.
  const { signal, onEvent: forward } = options;
  const free = options.routing.free;
  const routing: RoutingRequest = {
    ...options.routing,
    prefixBlocks: prefixBlockHashes(options.request.messages, router.settings.prefixBlockChars),
    promptTokens: estimatePromptTokens(options.request.messages),
  };
  for (let attempt = 0; attempt < options.maxAttempts; attempt++) {
    // Ended before (or between) attempts, e.g. the caller left during authentication: open nothing.
    if (signal.aborted) throw new AppError('cancelled', 'request ended before the generation opened');
    let worker: Worker;
    try {
      worker = options.fleet.pick(options.route, tried, routing);
    } catch (err) {
      // Nothing left to try: report the worker failure we saw rather than "no worker".
      throw attempt > 0 && lastError !== undefined ? lastError : err;
    }
    tried.add(worker);
    // The attempt's cancellation: a CallCancel rather than an AbortController (call-cancel.ts
    // says why), aborted by the request's end, the TTFT timeout, or the release.
    const attemptAbort = new CallCancel();
    signal.follow(attemptAbort);
    const dispatch = routing.dispatch;
    worker.localInFlight += 1;
    // Feedback for the router (scoring/router.ts): the first token is a TTFT sample when it
    // arrives, every delta advances the request's progress (a slowdown shows while it decodes),
    // and the end, when the worker finished the call, gives its decode rate.
    let finished = false;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      worker.localInFlight -= 1;
      if (free) router.endFree();
      if (dispatch) router.ended(worker, dispatch, finished);
      signal.unfollow(attemptAbort);
      attemptAbort.abort(RELEASED);
    };
    try {
      const { start, first, rest } = await underBreaker(worker, options, attemptAbort);
      if (dispatch) router.firstToken(worker, dispatch);
      const onEvent = (event: GenerateResponse): void => {
        if (event.delta && dispatch) router.progress(dispatch, event.delta.tokenCount);
        if (event.final) finished = true;
        forward(event);
      };
      return { worker, start, events: new Relay(first, rest, onEvent), release };
    } catch (err) {
      release();
      if (signal.aborted) throw err;
      lastError = err;
      if (!movableBeforeFirstToken(err)) throw err;
    }
  }
  throw lastError ?? new AppError('unavailable', 'No inference worker could take the request.', { code: 'no_healthy_worker', retryAfterSeconds: 1 });
}

/** firstToken under the worker's breaker (a closure outside openGeneration, which keeps no reference to `options`). */
function underBreaker(worker: Worker, options: GenerationOptions, attemptAbort: CallCancel) {
  return worker.breaker.run(() => firstToken(worker, options, attemptAbort));
}

/** The time-to-first-token timer's callback (the attempt is its argument: no closure per attempt). */
function ttftExpired(attemptAbort: CallCancel): void {
  attemptAbort.abort(new TtftTimeout());
}

async function firstToken(worker: Worker, options: GenerationOptions, attemptAbort: CallCancel) {
  const timer = setTimeout(ttftExpired, options.ttftTimeoutMs, attemptAbort);
  try {
    const rest = worker.client
      .generate(options.request, callOptions(options.requestId, attemptAbort, options.deadline))
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
    if (attemptAbort.reason instanceof TtftTimeout) throw ttftTimeout();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The events after `start`, each shown to `onEvent` before the caller gets it. Once the final
 * event arrived, the worker ends the call right after it: the end is read (bounded) before the
 * final is handed over, so a finished call is never cancelled (each cancel is an HTTP/2
 * RST_STREAM on a per-call stream, and a server closes connections that reset too often).
 * Whenever the caller stops early (client gone, error), the call is stopped on the worker; a
 * no-op once it ended. A plain iterator rather than an async generator: an open stream keeps no
 * suspended generator frame.
 */
class Relay implements AsyncIterableIterator<GenerateResponse> {
  private pending: GenerateResponse | undefined;
  private finalSent = false;
  private done = false;

  constructor(
    first: GenerateResponse,
    private readonly rest: AsyncIterator<GenerateResponse>,
    private readonly onEvent: (event: GenerateResponse) => void,
  ) {
    this.pending = first;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<GenerateResponse>> {
    if (this.done) return Promise.resolve({ done: true, value: undefined });
    const first = this.pending;
    if (first) {
      this.pending = undefined;
      return this.deliver(first);
    }
    if (this.finalSent) return this.return();
    return this.rest.next().then(
      (r) => (r.done ? this.return() : this.deliver(r.value)),
      (err: unknown) => this.stop().then(() => Promise.reject(err)),
    );
  }

  return(): Promise<IteratorResult<GenerateResponse>> {
    return this.stop().then(() => ({ done: true, value: undefined }));
  }

  private deliver(event: GenerateResponse): Promise<IteratorResult<GenerateResponse>> {
    try {
      this.onEvent(event);
    } catch (err) {
      return this.stop().then(() => Promise.reject(err));
    }
    if (!event.final) return Promise.resolve({ done: false, value: event });
    this.finalSent = true;
    return drainEnd(this.rest).then(() => ({ done: false, value: event }));
  }

  /** Stops the call on the worker (a no-op once it ended); once. */
  private async stop(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.rest.return?.();
  }
}

/** Waits (bounded) for the end of a call whose final event arrived. */
async function drainEnd(rest: AsyncIterator<GenerateResponse>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const bounded = new Promise<void>((resolve) => (timer = setTimeout(resolve, 1000)));
  await Promise.race([rest.next().then(() => undefined, () => undefined), bounded]);
  clearTimeout(timer);
}
