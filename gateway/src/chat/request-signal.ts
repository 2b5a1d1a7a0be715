/**
 * Everything that can end one request, as one object: the deadline (the tier's request timeout
 * counted from arrival, capped by the caller's own deadline when the transport has one), the
 * idle-stream timer, the client going away and the gateway's shutdown. `signal` aborts on the
 * first of them; `reason()` says which (see failure-policy.ts for what each one produces).
 *
 * An open stream holds this object for as long as it waits for tokens, so it is kept small: an
 * event only records its time (the idle check, when it comes, is put back for later if an event
 * came since), and the methods live on the class rather than as closures per request. The deadline
 * has its own timer, armed at construction and never moved: it must fire before the timer the
 * gRPC client arms for the same deadline when the call starts, or a request past its time would
 * end as a cancelled stream (503) instead of the 504 `request_timeout`.
 *
 * What is per process rather than per request lives in `OpenRequests` (one per process, made by
 * its composition root): the one listener on the shutdown signal, and the idle checks, kept in a
 * list per idle limit with one timer per list (the requests are the list's links), as Node keeps
 * its own timers, instead of a timer object per request.
 */
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
  /** Calls `watcher.gone(reason)` once the caller is gone (at once if it already is), until `unwatch`. */
  watch(watcher: GoneWatcher): void;
  /** Stops watching. */
  unwatch(): void;
}

/** Told when the caller left (an object with a method: the request itself, no closure per request). */
export interface GoneWatcher {
  gone(reason: unknown): void;
}

/** A signal as a Departure (the departure itself listens, by handleEvent: no closure). */
class SignalDeparture implements Departure {
  private watcher: GoneWatcher | undefined;

  constructor(private readonly signal: AbortSignal) {}

  watch(watcher: GoneWatcher): void {
    if (this.signal.aborted) {
      watcher.gone(this.signal.reason);
      return;
    }
    this.watcher = watcher;
    this.signal.addEventListener('abort', this, { once: true });
  }

  handleEvent(): void {
    this.watcher?.gone(this.signal.reason);
  }

  unwatch(): void {
    this.watcher = undefined;
    this.signal.removeEventListener('abort', this);
  }
}

export interface RequestSignalOptions {
  /** Time left for the whole request (the tier's timeout minus what arrival to now took). */
  remainingMs: number;
  /** The caller going away (closed connection, cancelled call): a signal, or a cheaper watch. */
  clientGone: AbortSignal | Departure;
  /** The process's requests in flight: ended together when the gateway's drain grace is over. */
  requests: OpenRequests;
}

/**
 * The requests in flight in one process. Each one is added when it starts and removed when it is
 * disposed; when `shutdown` aborts, every one still open ends with its reason. It also runs their
 * idle checks (see `IdleList`).
 */
export class OpenRequests {
  private readonly open = new Set<Limits>();
  /** One list per idle limit (in ms): a tier's limit is shared by all its streams. */
  private readonly idleLists = new Map<number, IdleList>();

  /** `shutdown`: aborted when the gateway's drain grace is over. */
  constructor(readonly shutdown: AbortSignal) {
    shutdown.addEventListener('abort', () => this.endAll(), { once: true });
  }

  /** Requests not yet disposed. */
  get size(): number {
    return this.open.size;
  }

  /** A request started (called by the request signal); false (not added) when the gateway is already shut down. */
  add(request: Limits): boolean {
    if (this.shutdown.aborted) return false;
    this.open.add(request);
    return true;
  }

  /** A request was disposed. */
  delete(request: Limits): void {
    this.open.delete(request);
  }

  /** The list of the requests watched for `ms` of silence. */
  idleList(ms: number): IdleList {
    let list = this.idleLists.get(ms);
    if (!list) {
      list = new IdleList(ms);
      this.idleLists.set(ms, list);
    }
    return list;
  }

  private endAll(): void {
    // A request disposed while others are ended is skipped (a Set's iteration sees deletions).
    for (const request of this.open) request.shutDown();
  }
}

/** The list timer's callback (module-level: the list is its argument, no closure). */
function onIdleDue(list: IdleList): void {
  list.due();
}

/**
 * The requests watched for the same idle limit, in the order of their next check (`idleDue`, a
 * performance.now() time), linked through the requests themselves; one timer, armed for the
 * first of them. A check finds the request idle if no event came since its check was set, and
 * otherwise sets the next one for the last event's time plus the limit.
 */
class IdleList {
  head: Limits | undefined;
  tail: Limits | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The idleDue the timer was armed for. */
  private timerDue = Infinity;

  constructor(readonly ms: number) {}

  /** Puts `request` in its place by `request.idleDue` (from the end: checks are mostly set later than the others). */
  insert(request: Limits): void {
    let after = this.tail;
    while (after && after.idleDue > request.idleDue) after = after.idlePrev;
    request.idlePrev = after;
    request.idleNext = after ? after.idleNext : this.head;
    if (request.idleNext) request.idleNext.idlePrev = request;
    else this.tail = request;
    if (after) after.idleNext = request;
    else this.head = request;
    request.idleList = this;
    if (request.idleDue < this.timerDue) this.arm(request.idleDue);
  }

  remove(request: Limits): void {
    const { idlePrev, idleNext } = request;
    if (idlePrev) idlePrev.idleNext = idleNext;
    else this.head = idleNext;
    if (idleNext) idleNext.idlePrev = idlePrev;
    else this.tail = idlePrev;
    request.idlePrev = undefined;
    request.idleNext = undefined;
    request.idleList = undefined;
    // Nothing left to check: no timer keeps the process awake (a request's own timer was cleared on dispose).
    if (!this.head) this.disarm();
  }

  /** The timer fired: checks every request whose check is due, then arms for the next one. */
  due(): void {
    this.timer = undefined;
    this.timerDue = Infinity;
    const now = performance.now();
    let head = this.head;
    while (head && head.idleDue <= now) {
      this.remove(head);
      head.idleCheck(now);
      head = this.head;
    }
    if (head) this.arm(head.idleDue);
  }

  private arm(due: number): void {
    clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(onIdleDue, Math.max(1, Math.ceil(due - performance.now())), this);
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Infinity;
  }
}

export function createRequestSignal(options: RequestSignalOptions): RequestSignal {
  return new Limits(options);
}

/** Timer callbacks (module-level: each timer carries the request as its argument, no closure). */
function onDeadline(limits: Limits): void {
  limits.expire('request_timeout');
}

class Limits implements RequestSignal, GoneWatcher {
  /** Date.now() of the deadline (a Date is made when `deadline` is read: one object fewer per request). */
  private readonly deadlineAt: number;
  // The request's end is kept here and passed on to at most one controller of its own (made only
  // when `signal` is read) and one follower (the generation's current attempt): no controller
  // per request on the chat path. The caller's departure is watched by a listener (removed in
  // dispose) and the shutdown by the process's registry of open requests, rather than
  // AbortSignal.any: the shutdown signal lives as long as the process and would otherwise keep a
  // dependent signal per request until it is garbage collected.
  private combined: AbortController | undefined;
  private follower: Abortable | undefined;
  private ended = false;
  private endedWith: unknown;
  private readonly requests: OpenRequests;
  private readonly departure: Departure;
  private readonly deadlineTimer: NodeJS.Timeout;
  /** 0 until watchIdle. */
  private idleMs = 0;
  /** performance.now() of the last event, and of the idle check's setting. */
  private lastEventAt = 0;
  private idleArmedAt = 0;
  /** performance.now() of the next idle check, and the links of its IdleList (set while in one). */
  idleDue = 0;
  idlePrev: Limits | undefined;
  idleNext: Limits | undefined;
  idleList: IdleList | undefined;
  private timedOut: 'request_timeout' | 'idle_timeout' | undefined;
  private departed = false;

  constructor(options: RequestSignalOptions) {
    const { clientGone, requests } = options;
    const remainingMs = Math.max(1, options.remainingMs);
    this.requests = requests;
    this.deadlineAt = Date.now() + remainingMs;
    // Whole milliseconds: Node keeps one timer list per distinct duration, and a fractional one
    // (the arrival-to-now time is fractional) made a list of its own for every request.
    this.deadlineTimer = setTimeout(onDeadline, Math.ceil(remainingMs), this);
    this.departure = clientGone instanceof AbortSignal ? new SignalDeparture(clientGone) : clientGone;
    this.departure.watch(this);
    if (!requests.add(this)) this.end(requests.shutdown.reason);
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

  /** The gateway's drain grace is over (called by OpenRequests). */
  shutDown(): void {
    this.end(this.requests.shutdown.reason);
  }

  reason(): EndReason | undefined {
    // A timeout is reported as such even if a shutdown or a departure followed it.
    if (this.timedOut) return this.timedOut;
    if (this.requests.shutdown.aborted) return 'shutdown';
    if (this.departed) return 'client_gone';
    return undefined;
  }

  watchIdle(ms: number): void {
    this.idleMs = Math.max(1, ms);
    this.lastEventAt = performance.now();
    this.setIdleCheck(this.lastEventAt + this.idleMs);
  }

  touch(): void {
    // Only the time: the idle check, when it comes, sees that an event came since and is set again.
    this.lastEventAt = performance.now();
  }

  dispose(): void {
    clearTimeout(this.deadlineTimer);
    this.idleList?.remove(this);
    this.idleMs = 0;
    this.departure.unwatch();
    this.requests.delete(this);
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

  /** The idle check is due (taken out of its list): the stream is idle unless an event came since it was set. */
  idleCheck(now: number): void {
    if (this.timedOut !== undefined || this.idleMs === 0) return;
    if (this.lastEventAt <= this.idleArmedAt) this.expire('idle_timeout');
    else this.setIdleCheck(this.lastEventAt + this.idleMs, now);
  }

  /** (Re)sets the idle check for `due` (performance.now() time). */
  private setIdleCheck(due: number, now = performance.now()): void {
    this.idleList?.remove(this);
    this.idleArmedAt = now;
    this.idleDue = due;
    this.requests.idleList(this.idleMs).insert(this);
  }
}
