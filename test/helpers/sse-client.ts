/**
 * A raw SSE client over node:http with eventsource-parser: what a non-SDK client sees.
 * It reports how the stream ended — `[DONE]`, an error event, or silently (a bug).
 */
import { request, type ClientRequest } from 'node:http';
import { createParser } from 'eventsource-parser';

export interface SseResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  events: unknown[];
  ending: 'done' | 'error-event' | 'silent' | 'json';
  body: string;
}

export interface SseOptions {
  port: number;
  path: string;
  key: string;
  body: unknown;
  /** Called for each data event; return true to abort the request (client disconnect). */
  onEvent?: (data: unknown, req: ClientRequest) => boolean | void;
}

export function sseRequest(options: SseOptions): Promise<SseResult> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(options.body);
    const events: unknown[] = [];
    let ending: SseResult['ending'] = 'silent';
    let raw = '';
    const req = request(
      {
        host: '127.0.0.1',
        port: options.port,
        path: options.path,
        method: 'POST',
        headers: { authorization: `Bearer ${options.key}`, 'content-type': 'application/json' },
      },
      (res) => {
        const isSse = String(res.headers['content-type']).startsWith('text/event-stream');
        const parser = createParser({
          onEvent(event) {
            if (ending !== 'silent') ending = 'silent'; // anything after the end is a bug
            if (event.data === '[DONE]') {
              ending = 'done';
              return;
            }
            const data = JSON.parse(event.data) as { error?: unknown };
            events.push(data);
            if (data.error) ending = 'error-event';
            if (options.onEvent?.(data, req)) req.destroy();
          },
        });
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          raw += chunk;
          if (isSse) parser.feed(chunk);
        });
        const finish = (): void =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, events, ending: isSse ? ending : 'json', body: raw });
        res.on('end', finish);
        res.on('close', finish);
        res.on('error', finish);
      },
    );
    req.on('error', (err) => {
      if (req.destroyed) resolve({ status: 0, headers: {}, events, ending, body: raw });
      else reject(err);
    });
    req.end(payload);
  });
}
