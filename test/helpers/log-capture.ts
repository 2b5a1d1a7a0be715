/**
 * Log capture for tests: a pino destination that keeps every NDJSON line, and a process logger
 * (lib/logging) writing into one, so tests can assert what the logs contain (and what they must
 * never contain, such as key material).
 */
import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { createLogger } from '../../lib/logging/logger.js';

export interface LogCapture {
  /** The destination to hand to createLogger. */
  stream: Writable;
  /** Every non-empty line written so far, in order. */
  lines: string[];
  /** All lines joined with newlines (for regex checks). */
  text(): string;
  /** The lines parsed as JSON objects. */
  records(): Array<Record<string, unknown>>;
}

export interface CapturedLogs extends LogCapture {
  logger: Logger;
}

export function captureLogs(): LogCapture {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(line);
      cb();
    },
  });
  return {
    stream,
    lines,
    text: () => lines.join('\n'),
    records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/** A logger for `service` (trace level unless told) whose output is captured. */
export function captureLogger(service = 'test', level = 'trace'): CapturedLogs {
  const capture = captureLogs();
  return { ...capture, logger: createLogger(service, level, capture.stream) };
}
