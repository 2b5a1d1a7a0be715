/** The API key from `Authorization: Bearer <key>`, or a 401 in the OpenAI envelope. */
import type { Request } from 'express';
import { unauthenticated } from '../../lib/errors/app-error.js';

export function bearerKey(req: Request): string {
  const header = req.headers.authorization;
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!m?.[1]) {
    throw unauthenticated('Missing or malformed Authorization header; expected "Authorization: Bearer <API key>".', {
      code: 'invalid_api_key',
    });
  }
  return m[1];
}
