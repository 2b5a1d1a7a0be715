/**
 * Cancelling one call without an AbortController. A server-streaming call reads three things of
 * its signal: whether it is aborted, its reason, and one 'abort' listener (the call itself). An
 * AbortSignal gives all three (CancelSignal below), but on Node 20 every `new AbortController()`
 * builds its signal with a prototype change, which gives the signal a hidden class of its own in
 * the old generation; made per request, that keeps the request's objects alive through the
 * young-generation collections. CallCancel is the same three things as a plain class.
 */

/** The 'abort' listener a call registers: an object, so that the call needs no closure. */
export interface CancelListener {
  handleEvent(): void;
}

/** What a call reads of its cancellation; an AbortSignal is one, CallCancel another. */
export interface CancelSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: CancelListener, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: CancelListener): void;
}

/**
 * A cancellation with at most one listener (the one call it belongs to), aborted once. A second
 * listener is refused rather than silently replacing the first.
 */
export class CallCancel implements CancelSignal {
  private abortedWith: unknown;
  private done = false;
  private listener: CancelListener | undefined;

  get aborted(): boolean {
    return this.done;
  }

  get reason(): unknown {
    return this.abortedWith;
  }

  /** Listeners are once-only: an abort happens once. */
  addEventListener(_type: 'abort', listener: CancelListener): void {
    if (this.listener !== undefined && this.listener !== listener) throw new Error('CallCancel takes one listener');
    this.listener = listener;
  }

  removeEventListener(_type: 'abort', listener: CancelListener): void {
    if (this.listener === listener) this.listener = undefined;
  }

  /** Aborts with `reason` and tells the listener; later calls do nothing. */
  abort(reason: unknown): void {
    if (this.done) return;
    this.done = true;
    this.abortedWith = reason;
    const listener = this.listener;
    this.listener = undefined;
    listener?.handleEvent();
  }
}
