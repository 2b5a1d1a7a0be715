/**
 * A fixed set of reusable items (llama.cpp context sequences) handed out one caller at a time.
 *
 * A llama.cpp context has a fixed number of sequences (`getSequence()` throws "No sequences
 * left" past it), so callers wait here instead. The inference service already limits
 * concurrency to the same number; this pool is the engine's own guarantee, not an admission
 * queue (no bound, no rejection policy).
 *
 * - LIFO hand-out: the most recently used sequence is the most likely to share a prompt prefix
 *   with the next request (same system prompt, same conversation), so its KV cache gets reused.
 * - FIFO waiters: a released item goes straight to the oldest waiter, so nobody starves.
 */

export interface SequencePool<T> {
  /** Resolves with an item; rejects with the signal's reason if it aborts while waiting. */
  acquire(signal?: AbortSignal): Promise<T>;
  /** Returns an item acquired from this pool. Releasing an item twice throws. */
  release(item: T): void;
  /** Rejects every current and future acquire with `reason` (used on shutdown). */
  close(reason: Error): void;
  /** Items not currently leased. */
  readonly available: number;
  /** Callers waiting for an item. */
  readonly waiting: number;
  readonly size: number;
}

interface Waiter<T> {
  resolve(item: T): void;
  reject(reason: unknown): void;
}

export function createSequencePool<T>(items: readonly T[]): SequencePool<T> {
  if (items.length === 0) throw new RangeError('a sequence pool needs at least one item');
  const idle: T[] = [...items].reverse(); // so the first item is handed out first
  const leased = new Set<T>();
  const waiters: Array<Waiter<T>> = [];
  let closedReason: Error | undefined;

  function lease(item: T): T {
    leased.add(item);
    return item;
  }

  function acquire(signal?: AbortSignal): Promise<T> {
    if (closedReason !== undefined) return Promise.reject(closedReason);
    if (signal?.aborted === true) return Promise.reject(abortReason(signal));
    const item = idle.pop();
    if (item !== undefined) return Promise.resolve(lease(item));
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        const index = waiters.indexOf(waiter);
        if (index !== -1) waiters.splice(index, 1);
        reject(abortReason(signal));
      };
      const waiter: Waiter<T> = {
        resolve: (granted) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(granted);
        },
        reject: (reason) => {
          signal?.removeEventListener('abort', onAbort);
          reject(reason);
        },
      };
      waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  function release(item: T): void {
    if (!leased.delete(item)) throw new Error('released an item that is not leased from this pool');
    const next = waiters.shift();
    if (next !== undefined && closedReason === undefined) {
      next.resolve(lease(item));
      return;
    }
    idle.push(item);
  }

  function close(reason: Error): void {
    closedReason = reason;
    for (const waiter of waiters.splice(0)) waiter.reject(reason);
  }

  return {
    acquire,
    release,
    close,
    get available() {
      return idle.length;
    },
    get waiting() {
      return waiters.length;
    },
    size: items.length,
  };
}

function abortReason(signal: AbortSignal | undefined): unknown {
  return signal?.reason ?? new DOMException('This operation was aborted', 'AbortError');
}
