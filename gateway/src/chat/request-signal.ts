/**
 * Everything that can end one request, as one object: the deadline (the tier's request timeout
 * counted from arrival, capped by the caller's own deadline when the transport has one), the
 * idle-stream timer, the client going away and the gateway's shutdown. `signal` aborts on the
 * first of them; `reason()` says which (see failure-policy.ts for what each one produces).
 *
 * An open stream holds this object for as long as it waits for tokens, so it is kept small: an
 * event only records its time (the idle timer, when it fires, re-arms itself if an event came
 * since), and the methods live on the class rather than as closures per request. The deadline
 * has its own timer, armed at construction and never moved: it must fire before the timer the
 * gRPC client arms for the same deadline when the call starts, or a request past its time would
 * end as a cancelled stream (503) instead of the 504 `request_timeout`.
 */
import { setMaxListeners } from 'node:events';
import type { EndReason } from '../failure-policy.js';
import type { Abortable, RequestEnd } from './generation.js';

export interface RequestSignal extends RequestEnd {
  /** Aborted when the request ends (made on first use: a chat request follows it without one). */
  readonly signal: AbortSignal;
  /** When the request must be over; propagated to the worker as the gRPC deadline. */
  readonly deadline: Date;
  /** Why the request was ended early, or undefined while it runs. */
  reason(): EndReason | undefined;
  /** Starts the idle-stream timer: silence longer than `ms` between events ends the request. */
  watchIdle(ms: number): void;
  /** An event arrived: restarts the idle timer. */
  touch(): void;
  /** Stops the timers; call once when the request is over. */
  dispose(): void;
}

/**
 * How a transport reports that its caller left, without an AbortController of its own: the HTTP
 * route watches the response's `close` event directly (one controller per request fewer).
 */
export interface Departure {
  /** Calls `watcher.gone(reason)` once the caller is gone (at once if it already is); returns "stop watching". */
  watch(watcher: GoneWatcher): () => void;
}

/** Told when the caller left (an object with a method: the request itself, no closure per request). */
export interface GoneWatcher {
  gone(reason: unknown): void;
}

/** A signal as a Departure. */
function signalDeparture(signal: AbortSignal): Departure {
  return {
    watch(watcher) {
      if (signal.aborted) {
        watcher.gone(signal.reason);
        return () => undefined;
      }
      const follow = (): void => watcher.gone(signal.reason);
      signal.addEventListener('abort', follow, { once: true });
      return () => signal.removeEventListener('abort', follow);
    },
  };
}

export interface RequestSignalOptions {
  /** Time left for the whole request (the tier's timeout minus what arrival to now took). */
  remainingMs: number;
  /** The caller going away (closed connection, cancelled call): a signal, or a cheaper watch. */
  clientGone: AbortSignal | Departure;
  /** Aborted when the gateway's drain grace is over. */
  shutdown: AbortSignal;
}

export function createRequestSignal(options: RequestSignalOptions): RequestSignal {
  return new Limits(options);
}

/** Timer callbacks (module-level: each timer carries the request as its argument, no closure). */
function onDeadline(limits: Limits): void {
  limits.expire('request_timeout');
}
function onIdle(limits: Limits): void {
  limits.idleCheck();
}

class Limits implements RequestSignal, GoneWatcher {
  /** Date.now() of the deadline (a Date is made when `deadline` is read: one object fewer per request). */
  private readonly deadlineAt: number;
  // The request's end is kept here and passed on to at most one controller of its own (made only
  // when `signal` is read) and one follower (the generation's current attempt): no controller
  // per request on the chat path. The two outside signals are watched by listeners (removed in
  // dispose) rather than AbortSignal.any: the shutdown signal lives as long as the process and
  // would otherwise keep a dependent signal per request until it is garbage collected.
  private combined: AbortController | undefined;
  private follower: Abortable | undefined;
  private ended = false;
  private endedWith: unknown;
  private readonly shutdown: AbortSignal;
  private readonly stopWatching: () => void;
  private readonly deadlineTimer: NodeJS.Timeout;
  private idleTimer: NodeJS.Timeout | undefined;
  /** 0 until watchIdle. */
  private idleMs = 0;
  /** performance.now() of the last event, and of the idle timer's arming. */
  private lastEventAt = 0;
  private idleArmedAt = 0;
  private timedOut: 'request_timeout' | 'idle_timeout' | undefined;
  private departed = false;

  constructor(options: RequestSignalOptions) {
    const { clientGone, shutdown } = options;
    const remainingMs = Math.max(1, options.remainingMs);
    this.shutdown = shutdown;
    this.deadlineAt = Date.now() + remainingMs;
    // Whole milliseconds: Node keeps one timer list per distinct duration, and a fractional one
    // (the arrival-to-now time is fractional) made a list of its own for every request.
    this.deadlineTimer = setTimeout(onDeadline, Math.ceil(remainingMs), this);
    // Every request in flight listens on the one shutdown signal: no listener cap (Node warns past 10).
    setMaxListeners(0, shutdown);
    this.stopWatching = (clientGone instanceof AbortSignal ? signalDeparture(clientGone) : clientGone).watch(this);
    // The request itself listens (handleEvent): no closure per request.
    if (shutdown.aborted) this.end(shutdown.reason);
    else shutdown.addEventListener('abort', this, { once: true });
  }

  get deadline(): Date {
    return new Date(this.deadlineAt);
  }

  get signal(): AbortSignal {
    if (!this.combined) {
      this.combined = new AbortController();
      if (this.ended) this.combined.abort(this.endedWith);
    }
    return this.combined.signal;
  }

  get aborted(): boolean {
    return this.ended;
  }

  follow(follower: Abortable): void {
    if (this.ended) follower.abort(this.endedWith);
    else this.follower = follower;
  }

  unfollow(follower: Abortable): void {
    if (this.follower === follower) this.follower = undefined;
  }

  /** The caller left. */
  gone(reason: unknown): void {
    this.departed = true;
    this.end(reason);
  }

  /** The shutdown signal aborted. */
  handleEvent(): void {
    this.end(this.shutdown.reason);
  }

  reason(): EndReason | undefined {
    // A timeout is reported as such even if a shutdown or a departure followed it.
    if (this.timedOut) return this.timedOut;
    if (this.shutdown.aborted) return 'shutdown';
    if (this.departed) return 'client_gone';
    return undefined;
  }

  watchIdle(ms: number): void {
    this.idleMs = Math.max(1, ms);
    this.lastEventAt = performance.now();
    this.armIdle(this.idleMs);
  }

  touch(): void {
    // Only the time: the idle timer, when it fires, sees that an event came since and re-arms.
    this.lastEventAt = performance.now();
  }

  dispose(): void {
    clearTimeout(this.deadlineTimer);
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.idleMs = 0;
    this.stopWatching();
    this.shutdown.removeEventListener('abort', this);
  }

  expire(kind: 'request_timeout' | 'idle_timeout'): void {
    if (this.timedOut !== undefined) return;
    this.timedOut = kind;
    this.end(kind);
  }

  /** The first end wins, as an AbortController's first abort does. */
  private end(reason: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.endedWith = reason;
    this.combined?.abort(reason);
    const follower = this.follower;
    this.follower = undefined;
    follower?.abort(reason);
  }

  /** The idle timer fired: the stream is idle unless an event came since it was armed. */
  idleCheck(): void {
    this.idleTimer = undefined;
    if (this.timedOut !== undefined || this.idleMs === 0) return;
    if (this.lastEventAt <= this.idleArmedAt) this.expire('idle_timeout');
    else this.armIdle(this.lastEventAt + this.idleMs - performance.now());
  }

  private armIdle(ms: number): void {
    clearTimeout(this.idleTimer);
    this.idleArmedAt = performance.now();
    this.idleTimer = setTimeout(onIdle, Math.max(1, Math.ceil(ms)), this);
  }
}
