/**
 * The abort signal of one upstream request, as undici takes it: an EventEmitter with `aborted`,
 * `reason` and an `abort` event (undici accepts an EventEmitter or an AbortSignal). It replaces
 * an AbortController per generation: on Node 20 creating an AbortSignal and adding a listener to
 * it costs several microseconds of CPU, an EventEmitter well under one (docs/BENCHMARKS.md,
 * "Seventh sitting").
 *
 * Like `AbortController.abort()`, the first abort wins, and aborting without a reason gives the
 * standard `AbortError` DOMException as the reason.
 */
import { EventEmitter } from 'node:events';

export class AbortHandle extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;

  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason ?? new DOMException('This operation was aborted', 'AbortError');
    this.emit('abort');
  }
}
