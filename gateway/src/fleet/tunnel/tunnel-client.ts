/**
 * The gateway's InferenceService client for a self-hosted worker, carried over its tunnel: each
 * Generate is a call id sent down the tunnel (with its deadline), whose events come back up tagged
 * with that id; leaving a call early (client gone, deadline, TTFT timeout) sends a cancel for it.
 * WatchStatus follows the status updates the worker sends. Errors are the AppErrors a dialled
 * worker's client would throw, so the fleet, the breaker and the failure policy treat both alike.
 */
import {
  type GenerateRequest,
  type GenerateResponse,
  type WorkerStatus,
} from '../../../../gen/xerotier/inference/v1/inference_service.js';
import type { ConnectRequest, TunnelError } from '../../../../gen/xerotier/gateway/v1/worker_tunnel_service.js';
import { AppError, type ErrorKind } from '../../../../lib/errors/app-error.js';
import type { CancelListener } from '../../../../lib/grpc/call-cancel.js';
import { cancellationOf } from '../../../../lib/grpc/client.js';
import { REQUEST_ID_METADATA } from '../../../../lib/grpc/server.js';
import type { Worker } from '../fleet.js';
import { createAsyncQueue, type AsyncQueue } from './async-queue.js';

/** What the client sends: a generation, a cancel, or credit for a call (when it has a window). */
export interface CallRequest {
  generate?: { callId: string; request: GenerateRequest; deadline: Date | undefined; requestId: string; window: number } | undefined;
  cancel?: string | undefined;
  credit?: { callId: string; events: number } | undefined;
}

export interface TunnelClient {
  client: Worker['client'];
  /** Hands one message from the worker to its call, or to the status watchers. */
  receive(message: ConnectRequest): void;
  /** Ends every open call and status watch with `reason`; later calls fail with it at once. */
  close(reason: AppError): void;
  /** The worker's last reported status. */
  status(): WorkerStatus | undefined;
  /** Calls open now. */
  openCalls(): number;
}

const KINDS: readonly ErrorKind[] = [
  'invalid_request',
  'too_large',
  'unauthenticated',
  'permission_denied',
  'not_found',
  'rate_limited',
  'unavailable',
  'timeout',
  'cancelled',
  'internal',
];

/** A worker's error report as an AppError (bounded: the worker is the customer's machine). */
export function fromTunnelError(e: TunnelError | undefined): AppError {
  const kind = KINDS.find((k) => k === e?.kind) ?? 'internal';
  const message = kind === 'internal' ? 'inference worker failed' : (e?.message ?? '').slice(0, 500) || 'inference worker failed';
  return new AppError(kind, message, {
    code: e?.code && /^[a-z_]{1,64}$/.test(e.code) ? e.code : undefined,
    param: e?.param ? e.param.slice(0, 100) : undefined,
    retryAfterSeconds: e?.retryAfterSeconds ? Math.min(3600, Math.max(1, e.retryAfterSeconds)) : undefined,
  });
}

const cancelled = (): AppError => new AppError('cancelled', 'request cancelled');

/** What every call of one tunnel shares: how to send, the open calls, and why the tunnel closed. */
interface CallHost {
  send(message: CallRequest): void;
  readonly calls: Map<string, OpenCall>;
  readonly closedWith: AppError | undefined;
  nextId(): string;
}

type GenerateOptions = Parameters<Worker['client']['generate']>[1];

/**
 * One call, as its caller iterates it: the events the worker sent that the caller has not read
 * yet, how the call ended (the worker's end or error), and whether the caller's cancellation or
 * the deadline stopped it. It is its own async iterator (the generation is sent with the first
 * `next`, as a generator would), the call's 'abort' listener and its deadline timer's argument:
 * no generator frame, no suspended `await` and no closures per call. A `next` that finds nothing
 * to read parks its promise's callbacks here until an event, the end or a stop arrives.
 */
class OpenCall implements CancelListener, AsyncIterableIterator<GenerateResponse> {
  readonly events: GenerateResponse[] = [];
  /** Events read since the last credit was granted (with a window). */
  private read = 0;
  /** The worker ended the call (normally, or with `failure`). */
  ended = false;
  failure: unknown;
  /** Why the caller stopped waiting, if it did. */
  stopped: 'cancelled' | 'timeout' | undefined;
  timer: NodeJS.Timeout | undefined;
  private callId = '';
  private caller: ReturnType<typeof cancellationOf>;
  private started = false;
  /** The caller is done with it (read to its end, failed, or left): cleaned up once. */
  private done = false;
  private resolveNext: ((result: IteratorResult<GenerateResponse>) => void) | undefined;
  private rejectNext: ((err: unknown) => void) | undefined;

  /** `window`: events the worker may send ahead of what was read (0: no flow control). */
  constructor(
    private readonly host: CallHost,
    private readonly window: number,
    private request: GenerateRequest | undefined,
    private options: GenerateOptions,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  push(event: GenerateResponse): void {
    if (this.ended) return;
    this.events.push(event);
    this.wake();
  }

  end(failure?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = failure;
    this.wake();
  }

  /** The caller's cancellation fired. */
  handleEvent(): void {
    this.stopped ??= 'cancelled';
    this.wake();
  }

  next(): Promise<IteratorResult<GenerateResponse>> {
    if (this.done) return Promise.resolve({ done: true, value: undefined });
    try {
      if (!this.started) this.start();
      const result = this.poll();
      if (result) return Promise.resolve(result);
    } catch (err) {
      this.finish();
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.resolveNext = resolve;
      this.rejectNext = reject;
    });
  }

  /** The caller leaves early: stop the call on the worker. */
  return(): Promise<IteratorResult<GenerateResponse>> {
    this.finish();
    return Promise.resolve({ done: true, value: undefined });
  }

  private start(): void {
    this.started = true;
    const { host } = this;
    const options = this.options ?? {};
    const request = this.request!;
    // Neither is read again: the call does not keep the prompt for as long as it is open.
    this.request = undefined;
    this.options = undefined;
    if (host.closedWith) throw host.closedWith;
    const caller = cancellationOf(options);
    if (caller?.aborted) throw cancelled();
    this.callId = host.nextId();
    host.calls.set(this.callId, this);
    const { deadline } = options;
    const deadlineAt = deadline === undefined ? undefined : deadline instanceof Date ? deadline : new Date(Date.now() + deadline);
    if (deadlineAt !== undefined) this.timer = setTimeout(deadlinePassed, Math.max(0, Math.ceil(deadlineAt.getTime() - Date.now())), this);
    if (caller) {
      caller.addEventListener('abort', this, { once: true });
      this.caller = caller;
    }
    host.send({
      generate: {
        callId: this.callId,
        // Completed with its defaults when the message is serialised (nice-grpc runs fromPartial
        // on every ts-proto message it sends): no copy here.
        request,
        deadline: deadlineAt,
        requestId: options.metadata?.get(REQUEST_ID_METADATA) ?? '',
        window: this.window,
      },
      cancel: undefined,
    });
  }

  /**
   * The next result, an error to throw, or undefined when there is nothing yet. The call is
   * finished (finish) with its last answer: the end, or the error.
   */
  private poll(): IteratorResult<GenerateResponse> | undefined {
    if (this.stopped === 'timeout') throw this.fail(new AppError('timeout', 'inference worker did not answer in time'));
    if (this.stopped) throw this.fail(cancelled());
    const event = this.events.shift();
    if (event) {
      // Grant back what was read once it is half the window, so a reader keeping up never waits.
      if (this.window > 0 && ++this.read * 2 >= this.window) {
        this.host.send({ credit: { callId: this.callId, events: this.read } });
        this.read = 0;
      }
      return { done: false, value: event };
    }
    if (this.ended) {
      if (this.failure !== undefined) throw this.fail(this.failure);
      this.finish();
      return { done: true, value: undefined };
    }
    return undefined;
  }

  /** Finishes the call and hands back `err` to throw. */
  private fail(err: unknown): unknown {
    this.finish();
    return err;
  }

  /** Answers a parked `next` once there is something to answer with. */
  private wake(): void {
    const resolve = this.resolveNext;
    const reject = this.rejectNext;
    if (!resolve || !reject) return;
    // Taken before poll: finishing would otherwise answer it as ended.
    this.resolveNext = this.rejectNext = undefined;
    let result: IteratorResult<GenerateResponse> | undefined;
    try {
      result = this.poll();
    } catch (err) {
      reject(err);
      return;
    }
    if (result) resolve(result);
    else {
      this.resolveNext = resolve;
      this.rejectNext = reject;
    }
  }

  /** What a generator's `finally` did: once, whether the call ended, failed or was left. */
  private finish(): void {
    if (this.done) return;
    this.done = true;
    // A `next` still parked (the caller returned without waiting for it) ends too.
    const resolve = this.resolveNext;
    this.resolveNext = this.rejectNext = undefined;
    resolve?.({ done: true, value: undefined });
    if (!this.started) return;
    clearTimeout(this.timer);
    this.caller?.removeEventListener('abort', this);
    this.caller = undefined;
    this.host.calls.delete(this.callId);
    // Left before the worker ended the call: stop it there.
    if (!this.ended && !this.host.closedWith) this.host.send({ generate: undefined, cancel: this.callId });
  }
}

/** The deadline timer's callback (the call is its argument). */
function deadlinePassed(call: OpenCall): void {
  call.stopped ??= 'timeout';
  call.handleEvent();
}

/**
 * `send` carries the client's messages to the worker. With a `window`, each call may have at most
 * that many events sent ahead of what its caller has read (per-call flow control on a shared
 * stream); without one, the worker sends as fast as it generates.
 */
export function createTunnelClient(send: (message: CallRequest) => void, window = 0): TunnelClient {
  const calls = new Map<string, OpenCall>();
  const watchers = new Set<AsyncQueue<WorkerStatus>>();
  let closedWith: AppError | undefined;
  let latest: WorkerStatus | undefined;
  let nextId = 0;

  const host: CallHost = {
    send,
    calls,
    get closedWith() {
      return closedWith;
    },
    nextId: () => `c${++nextId}`,
  };

  const generate = (partial: Parameters<Worker['client']['generate']>[0], options?: GenerateOptions): AsyncIterable<GenerateResponse> =>
    new OpenCall(host, window, partial as GenerateRequest, options);

  async function* watchStatus(
    _request: Parameters<Worker['client']['watchStatus']>[0],
    options: Parameters<Worker['client']['watchStatus']>[1] = {},
  ): AsyncGenerator<{ status: WorkerStatus }> {
    if (closedWith) throw closedWith;
    const updates = createAsyncQueue<WorkerStatus>();
    watchers.add(updates);
    try {
      if (latest) yield { status: latest };
      for (;;) {
        const status = await updates.take(options.signal);
        if (status === undefined) return;
        yield { status };
      }
    } catch (err) {
      if (err instanceof Error && err.name === 'AbortError') throw cancelled();
      throw err;
    } finally {
      watchers.delete(updates);
    }
  }

  const client = {
    generate,
    watchStatus,
    async getStatus() {
      if (closedWith) throw closedWith;
      return { status: latest };
    },
  } as unknown as Worker['client'];

  return {
    client,
    receive(message) {
      const status = message.hello ?? message.status;
      if (status) {
        latest = status;
        for (const w of watchers) w.push(status);
      } else if (message.callEvent?.response) {
        calls.get(message.callEvent.callId)?.push(message.callEvent.response);
      } else if (message.callError) {
        calls.get(message.callError.callId)?.end(fromTunnelError(message.callError.error));
      } else if (message.callEnd !== undefined) {
        calls.get(message.callEnd)?.end();
      }
    },
    close(reason) {
      closedWith ??= reason;
      for (const call of calls.values()) call.end(reason);
      for (const w of watchers) w.end(reason);
    },
    status: () => latest,
    openCalls: () => calls.size,
  };
}
