/**
 * The lifetime of one upstream request, and the openai engine's one cancel path.
 *
 * Every request runs under its own abort signal (`signal`, an {@link AbortHandle} handed to
 * upstream-http.ts). It aborts when:
 * the caller's signal aborts; the engine closes (`abort()`); the upstream stays silent for
 * `stallTimeoutMs` while we wait on it (`stalled` is then true); the upstream does not end the
 * body within {@link DRAIN_AFTER_DONE_MS} of `[DONE]`; or the call is closed before its body was
 * read to the end (consumer `.return()`, an error). Aborting drops the upstream connection, so
 * the engine server stops generating. A body read to its end keeps its keep-alive connection.
 */
import { AbortHandle } from './abort-handle.js';

/** After `[DONE]`, how long to wait for the upstream to end the body before dropping the connection. */
export const DRAIN_AFTER_DONE_MS = 1_000;

/** Why the call aborted when the upstream went silent. */
class StallTimeout extends Error {
  override readonly name = 'StallTimeout';
}

export interface UpstreamCall {
  /** For the upstream request: aborts on every cause listed above. */
  readonly signal: AbortHandle;
  /** True once the stall timer fired. */
  readonly stalled: boolean;
  /**
   * Awaits an upstream step (headers, a body chunk) under the stall timer. Time spent elsewhere
   * (a slow consumer at a `yield`) is not the upstream's fault: the timer only counts waits.
   */
  wait<T>(step: Promise<T>): Promise<T>;
  /** The response body, destroyed when the call closes early. */
  track(body: { destroy(): unknown }): void;
  /** `[DONE]` arrived: no more stall timer; the upstream gets a moment to end the body. */
  finished(): void;
  /** The body was read to its end: nothing left to abort. */
  complete(): void;
  /** Aborts the request (engine closing). */
  abort(): void;
  /** Always called when the request ends: clears timers, aborts unless complete. */
  close(): void;
}

export function openUpstreamCall(callerSignal: AbortSignal, stallTimeoutMs: number): UpstreamCall {
  const controller = new AbortHandle();
  const onCallerAbort = (): void => controller.abort(callerSignal.reason);
  if (callerSignal.aborted) controller.abort(callerSignal.reason);
  else callerSignal.addEventListener('abort', onCallerAbort, { once: true });

  let stalled = false;
  let waiting = true; // the request is the first wait
  let done = false;
  let bodyComplete = false;
  let body: { destroy(): unknown } | undefined;
  let drainTimer: NodeJS.Timeout | undefined;
  const stallTimer: NodeJS.Timeout = setTimeout(() => {
    if (!waiting) {
      stallTimer.refresh();
      return;
    }
    stalled = true;
    controller.abort(new StallTimeout(`no upstream data for ${stallTimeoutMs} ms`));
  }, stallTimeoutMs);

  return {
    signal: controller,
    get stalled() {
      return stalled;
    },
    async wait(step) {
      if (!done) stallTimer.refresh();
      waiting = true;
      try {
        return await step;
      } finally {
        waiting = false;
      }
    },
    track(b) {
      body = b;
    },
    finished() {
      done = true;
      clearTimeout(stallTimer);
      drainTimer = setTimeout(() => controller.abort(), DRAIN_AFTER_DONE_MS);
    },
    complete() {
      bodyComplete = true;
    },
    abort() {
      controller.abort();
    },
    close() {
      clearTimeout(stallTimer);
      clearTimeout(drainTimer);
      callerSignal.removeEventListener('abort', onCallerAbort);
      if (!bodyComplete) {
        controller.abort();
        body?.destroy();
      }
    },
  };
}
