/**
 * An unbounded hand-over queue between a producer (status updates arriving on the tunnel) and one
 * consumer (a status watcher of the tunnel's worker). The producer pushes and finally ends it,
 * with or without an error; the consumer takes one item at a time and may give up on a signal.
 */
export interface AsyncQueue<T> {
  push(item: T): void;
  /** No more items: take() resolves `undefined` once the queue is empty, or rejects with `error`. */
  end(error?: unknown): void;
  /** The next item; undefined once ended and empty. Rejects with an AbortError when `signal` aborts. */
  take(signal?: AbortSignal): Promise<T | undefined>;
  readonly ended: boolean;
}

export function createAsyncQueue<T>(): AsyncQueue<T> {
  const items: T[] = [];
  let ended = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  return {
    push(item) {
      if (ended) return;
      items.push(item);
      wake?.();
    },
    end(error) {
      if (ended) return;
      ended = true;
      if (error !== undefined) failure = { error };
      wake?.();
    },
    get ended() {
      return ended;
    },
    async take(signal) {
      for (;;) {
        if (signal?.aborted) throw new DOMException('aborted', 'AbortError');
        if (items.length > 0) return items.shift();
        if (ended) {
          if (failure) throw failure.error;
          return undefined;
        }
        await new Promise<void>((resolve, reject) => {
          const onAbort = (): void => {
            wake = undefined;
            reject(new DOMException('aborted', 'AbortError'));
          };
          wake = () => {
            wake = undefined;
            signal?.removeEventListener('abort', onAbort);
            resolve();
          };
          signal?.addEventListener('abort', onAbort, { once: true });
        });
      }
    },
  };
}
