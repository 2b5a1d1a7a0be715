/**
 * One pino root per process, made by its composition root: NDJSON to stdout (or a given stream),
 * `authorization` and key-bearing paths redacted, a `service` binding on every line.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export const REDACT_PATHS = [
  'authorization',
  'req.headers.authorization',
  'headers.authorization',
  'metadata.authorization',
  'apiKey',
  'api_key',
  'secret',
  '*.apiKey',
  '*.api_key',
  '*.secret',
];

export function createLogger(
  service: string,
  level: string,
  destination?: DestinationStream,
): Logger {
  return pino(
    {
      level,
      base: { service },
      redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

