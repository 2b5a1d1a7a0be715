/**
 * Server-sent events from an upstream body, on top of `eventsource-parser` (the WHATWG
 * interpretation: `\n` / `\r\n` / `\r` line ends, `:` comments, multi-line `data:`, `id` without
 * NUL, unknown fields ignored). This wrapper adds what an upstream body needs:
 *
 * - bytes in, split anywhere (also inside a UTF-8 sequence): a streaming TextDecoder (made on
 *   the first bytes; the engine feeds text its body stream already decoded);
 * - a `\r` that ends a chunk is a line end right away (eventsource-parser would hold it back
 *   until it sees whether `\n` follows, delaying an event by one network chunk): line ends are
 *   normalized to `\n` before parsing, and a `\n` that starts the next chunk is then the rest
 *   of that CRLF and is dropped;
 * - `end()` dispatches a trailing event whose blank line never came (unlike the spec), because
 *   some servers close right after `data: [DONE]\n`.
 *
 * Events come out in the order they complete; `id` belongs to its own event only.
 */
import { createParser, type EventSourceParser } from 'eventsource-parser';

export interface SseEvent {
  /** `event:` field; 'message' when absent. */
  event: string;
  /** `data:` lines joined with '\n'. */
  data: string;
  /** `id:` field of this event, when present (not carried over to later events). */
  id?: string | undefined;
}

export class SseParser {
  private decoder: InstanceType<typeof TextDecoder> | undefined;
  private readonly parser: EventSourceParser;
  private events: SseEvent[] = [];
  /** The previous chunk ended in '\r' (fed as a line end): a leading '\n' completes that CRLF. */
  private skipLeadingLf = false;

  constructor() {
    this.parser = createParser({
      onEvent: (e) => {
        this.events.push({ event: e.event ?? 'message', data: e.data, ...(e.id !== undefined ? { id: e.id } : {}) });
      },
    });
  }

  /** Feeds bytes (or already-decoded text); returns the events this chunk completed. */
  feed(chunk: Uint8Array | string): SseEvent[] {
    this.push(typeof chunk === 'string' ? chunk : (this.decoder ??= new TextDecoder('utf-8')).decode(chunk, { stream: true }));
    return this.take();
  }

  /** The body ended: flushes the decoder and dispatches an event still waiting for its blank line. */
  end(): SseEvent[] {
    if (this.decoder !== undefined) this.push(this.decoder.decode());
    this.parser.feed('\n\n');
    return this.take();
  }

  private push(text: string): void {
    if (text.length === 0) return;
    if (this.skipLeadingLf) {
      this.skipLeadingLf = false;
      if (text.charCodeAt(0) === 10) text = text.slice(1);
    }
    // Every line end becomes '\n' (in SSE, '\r\n', '\r' and '\n' are the same line end, and
    // '\r' cannot occur inside a field), so a '\r' at the end of a chunk ends its line now.
    this.skipLeadingLf = text.endsWith('\r');
    if (text.includes('\r')) text = text.replace(/\r\n?/g, '\n');
    if (text.length > 0) this.parser.feed(text);
  }

  private take(): SseEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }
}
