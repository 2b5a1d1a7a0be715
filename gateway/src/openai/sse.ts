/**
 * SSE writer for OpenAI streams: headers are committed by the caller only
 * after the first token; each write awaits 'drain' when the socket buffer is full, and a reader
 * too slow to keep the backlog under the cap gets an error instead of growing our memory.
 * Events written in the same turn of the event loop are coalesced into one socket write.
 */
import type { Response } from 'express';

export interface SseWriter {
  /** Writes one `data:` event; resolves once the socket can take more. */
  send(data: unknown): Promise<void>;
  /** `send` for an event already serialised to JSON by the caller. */
  sendJson(json: string): Promise<void>;
  done(): void;
  /** One terminal error event (no [DONE] after it), then the stream ends. */
  error(body: unknown): void;
}

export function openSse(res: Response, headers: Record<string, string>): SseWriter {
  res.writeHead(200, {
    ...headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
  return new Writer(res);
}

/** setImmediate's callback (module-level: the writer is its argument, no closure per stream). */
function uncork(writer: Writer): void {
  writer.uncork();
}

/**
 * The writer of one open stream, which it holds for as long as it waits for tokens: its state is
 * two fields and its methods are shared, not closures per stream.
 */
class Writer implements SseWriter {
  // Events that are ready together (one network read from the worker often carries several)
  // leave as one socket write: the first write of a batch corks the response, and it is uncorked
  // once the current I/O callbacks are done (res.end() flushes whatever is still corked).
  private corked = false;

  constructor(private readonly res: Response) {}

  // JSON.stringify escapes newlines, so model output can never forge an event boundary.
  send(data: unknown): Promise<void> {
    return this.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  sendJson(json: string): Promise<void> {
    return this.write(`data: ${json}\n\n`);
  }

  done(): void {
    if (!this.res.writableEnded) this.res.end('data: [DONE]\n\n');
  }

  error(body: unknown): void {
    if (!this.res.writableEnded) this.res.end(`data: ${JSON.stringify(body)}\n\n`);
  }

  uncork(): void {
    this.corked = false;
    this.res.uncork();
  }

  private write(text: string): Promise<void> {
    const { res } = this;
    if (res.writableEnded || res.destroyed) return Promise.resolve();
    if (!this.corked) {
      this.corked = true;
      res.cork();
      setImmediate(uncork, this);
    }
    if (res.write(text)) return Promise.resolve();
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
