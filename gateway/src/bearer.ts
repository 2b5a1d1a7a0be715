/** The API key from `Authorization: Bearer <key>`, or a 401 in the OpenAI envelope. */
import type { Request } from 'express';
import { unauthenticated } from '../../lib/errors/app-error.js';

export function bearerKey(req: Request): string {
  const key = parseBearer(req.headers.authorization);
  if (!key) {
    throw unauthenticated('Missing or malformed Authorization header; expected "Authorization: Bearer <API key>".', {
      code: 'invalid_api_key',
    });
  }
  return key;
}

/** The key of a `Bearer <key>` value (HTTP header or gRPC metadata), or undefined. */
export function parseBearer(value: string | undefined): string | undefined {
  return (value ? /^Bearer\s+(\S+)\s*$/i.exec(value) : null)?.[1] || undefined;
}
