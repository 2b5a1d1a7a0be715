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

/**
 * How a transport reports that its caller left, without an AbortController of its own: the HTTP
 * route watches the response's `close` event directly (one controller per request fewer).
 */
export interface Departure {
  /** Calls `onGone(reason)` once the caller is gone (at once if it already is); returns "stop watching". */
  watch(onGone: (reason: unknown) => void): () => void;
}

/** A signal as a Departure. */
function signalDeparture(signal: AbortSignal): Departure {
  return {
    watch(onGone) {
      if (signal.aborted) {
        onGone(signal.reason);
        return () => undefined;
      }
      const follow = (): void => onGone(signal.reason);
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
  let idleTimer: NodeJS.Timeout | undefined;
  // Every request in flight listens on the one shutdown signal: no listener cap (Node warns past 10).
  setMaxListeners(0, shutdown);
  let departed = false;
  const stopWatching = (clientGone instanceof AbortSignal ? signalDeparture(clientGone) : clientGone).watch((reason) => {
    departed = true;
    combined.abort(reason);
  });
  if (shutdown.aborted) combined.abort(shutdown.reason);
  else shutdown.addEventListener('abort', follow, { once: true });
  const signal = combined.signal;
  return {
    signal,
    deadline: new Date(Date.now() + remainingMs),
    reason() {
      // A timeout is reported as such even if a shutdown or a departure followed it.
      if (timedOut) return timedOut;
      if (shutdown.aborted) return 'shutdown';
      if (departed) return 'client_gone';
      return undefined;
    },
    watchIdle(ms) {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(expire('idle_timeout'), ms);
    },
    touch() {
      // Restarts the same timer (no new Timeout and closure per event).
      idleTimer?.refresh();
    },
    dispose() {
      clearTimeout(deadlineTimer);
      clearTimeout(idleTimer);
      idleTimer = undefined;
      stopWatching();
      shutdown.removeEventListener('abort', follow);
    },
  };
}
