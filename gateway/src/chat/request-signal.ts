/**
 * Everything that can end one request, as one object: the deadline (the tier's request timeout
 * counted from arrival, capped by the caller's own deadline when the transport has one), the
 * idle-stream timer, the client going away and the gateway's shutdown. `signal` aborts on the
 * first of them; `reason()` says which (see failure-policy.ts for what each one produces).
 */
import { setMaxListeners } from 'node:events';
import type { EndReason } from '../failure-policy.js';

export interface RequestSignal {
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

export interface RequestSignalOptions {
  /** Time left for the whole request (the tier's timeout minus what arrival to now took). */
  remainingMs: number;
  /** Aborted when the caller goes away (closed connection, cancelled call). */
  clientGone: AbortSignal;
  /** Aborted when the gateway's drain grace is over. */
  shutdown: AbortSignal;
}

export function createRequestSignal(options: RequestSignalOptions): RequestSignal {
  // One controller fed by listeners on the two outside signals (removed in dispose) rather than
  // AbortSignal.any: the shutdown signal lives as long as the process and would otherwise keep
  // a dependent signal per request until it is garbage collected.
  const combined = new AbortController();
  const { clientGone, shutdown } = options;
  const follow = function (this: AbortSignal): void {
    combined.abort(this.reason);
  };
  let timedOut: 'request_timeout' | 'idle_timeout' | undefined;
  const expire = (kind: 'request_timeout' | 'idle_timeout') => () => {
    timedOut ??= kind;
    combined.abort(kind);
  };
  const remainingMs = Math.max(1, options.remainingMs);
  const deadlineTimer = setTimeout(expire('request_timeout'), remainingMs);
  let idleMs = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  // Every request in flight listens on the one shutdown signal: no listener cap (Node warns past 10).
  setMaxListeners(0, shutdown);
  for (const outside of [clientGone, shutdown]) {
    if (outside.aborted) combined.abort(outside.reason);
    else outside.addEventListener('abort', follow, { once: true });
  }
  const signal = combined.signal;
  return {
    signal,
    deadline: new Date(Date.now() + remainingMs),
    reason() {
      // A timeout is reported as such even if a shutdown or a departure followed it.
      if (timedOut) return timedOut;
      if (shutdown.aborted) return 'shutdown';
      if (clientGone.aborted) return 'client_gone';
      return undefined;
    },
    watchIdle(ms) {
      idleMs = ms;
      clearTimeout(idleTimer);
      idleTimer = setTimeout(expire('idle_timeout'), idleMs);
    },
    touch() {
      if (idleTimer === undefined) return;
      clearTimeout(idleTimer);
      idleTimer = setTimeout(expire('idle_timeout'), idleMs);
    },
    dispose() {
      clearTimeout(deadlineTimer);
      clearTimeout(idleTimer);
      idleTimer = undefined;
      clientGone.removeEventListener('abort', follow);
      shutdown.removeEventListener('abort', follow);
    },
  };
}
