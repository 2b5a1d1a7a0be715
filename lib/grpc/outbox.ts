/**
 * A one-consumer queue of outgoing messages on a long-lived stream (a generation channel, a
 * worker's tunnel): pushed by any number of calls, drained in order by the stream's writer (the
 * request or response iterable nice-grpc reads), ended with the stream.
 */
export interface Outbox<T> {
  /** Queues `message` (dropped once closed). */
  push(message: T): void;
  /** No more messages: the drain ends once the queue is empty. */
  close(): void;
  readonly closed: boolean;
  /** The messages, in order, until closed and empty. Read once. */
  drain(): AsyncGenerator<T>;
}

export function createOutbox<T>(): Outbox<T> {
  const items: T[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  return {
    push(m) {
      if (closed) return;
      items.push(m);
      wake?.();
    },
    close() {
      closed = true;
      wake?.();
    },
    get closed() {
      return closed;
    },
    async *drain() {
      for (;;) {
        if (items.length > 0) {
          yield items.shift()!;
          continue;
        }
        if (closed) return;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    },
  };
}
