/** A pino destination that keeps every line, so tests can assert what logs contain. */
import { Writable } from 'node:stream';

export interface LogCapture {
  stream: Writable;
  lines: string[];
}

export function captureLogs(): LogCapture {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(line);
      cb();
    },
  });
  return { stream, lines };
}
