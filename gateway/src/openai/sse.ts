/**
 * SSE writer for OpenAI streams: headers are committed by the caller only after the first token
 * and leave with the first events; each write awaits 'drain' when the socket buffer is full, and
 * a reader too slow to keep the backlog under the cap gets an error instead of growing our memory.
 * Events written in the same turn of the event loop are joined into one string and leave as one
 * chunk of the response (one `res.write`, or the `res.end` that closes the stream).
 */
import type { Response } from 'express';

export interface SseWriter {
  /** Writes one `data:` event; resolves once the socket can take more. */
  send(data: unknown): Promise<void>;
  /** `send` for an event already serialised to JSON by the caller. */
  sendJson(json: string): Promise<void>;
  /** Ends the stream: the events given (already serialised to JSON), then `[DONE]`. */
  done(...lastJson: string[]): void;
  /** One terminal error event (no [DONE] after it), then the stream ends. */
  error(body: unknown): void;
}

export function openSse(res: Response, headers: Record<string, string>): SseWriter {
  // Stored, not sent: Node writes the header block in front of the first chunk of the body.
  res.writeHead(200, {
    ...headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  return new Writer(res);
}

const RESOLVED = Promise.resolve();
const DONE = 'data: [DONE]\n\n';

/**
 * Joined events past this many characters are written at once rather than at the end of the turn,
 * so that backpressure is seen as it would be with one write per event (Node's own high-water
 * mark for a response is 16 KiB).
 */
const FLUSH_AT = 16 * 1024;

/** setImmediate's callback (module-level: the writer is its argument, no closure per stream). */
function flushLater(writer: Writer): void {
  writer.flush();
}

/**
 * The writer of one open stream, which it holds for as long as it waits for tokens: its state is
 * two fields and its methods are shared, not closures per stream.
 */
class Writer implements SseWriter {
  // Events not yet handed to the response. Events that are ready together (one network read from
  // the worker can carry several messages) are joined here and written once the current I/O
  // callbacks are done: Node frames every `res.write` of a chunked response as its own chunk
  // (four socket writes each), so one write per batch instead of one per event.
  private pending = '';

  constructor(private readonly res: Response) {}

  // JSON.stringify escapes newlines, so model output can never forge an event boundary.
  send(data: unknown): Promise<void> {
    return this.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  sendJson(json: string): Promise<void> {
    return this.write(`data: ${json}\n\n`);
  }

  done(...lastJson: string[]): void {
    let text = this.pending;
    for (const json of lastJson) text += `data: ${json}\n\n`;
    this.end(text + DONE);
  }

  error(body: unknown): void {
    this.end(`${this.pending}data: ${JSON.stringify(body)}\n\n`);
  }

  /** Hands the joined events to the response; false when its buffer is full. */
  flush(): boolean {
    const text = this.pending;
    if (text === '') return true;
    this.pending = '';
    const { res } = this;
    if (res.writableEnded || res.destroyed) return true;
    return res.write(text);
  }

  private end(text: string): void {
    this.pending = '';
    if (!this.res.writableEnded) this.res.end(text);
  }

  private write(text: string): Promise<void> {
    const { res } = this;
    if (res.writableEnded || res.destroyed) return RESOLVED;
    if (this.pending === '') setImmediate(flushLater, this);
    this.pending += text;
    // Write now when the batch is large or the reader is behind (the caller then waits for
    // 'drain', as it would have with one write per event); otherwise at the end of the turn.
    if (this.pending.length < FLUSH_AT && !res.writableNeedDrain) return RESOLVED;
    if (this.flush()) return RESOLVED;
    return new Promise((resolve) => {
      const done = (): void => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  }
}
