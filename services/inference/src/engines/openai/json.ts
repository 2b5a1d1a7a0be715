/** Small JSON helpers for upstream bodies. */
import type { Readable } from 'node:stream';

/** Error bodies (and answers to a non-streaming request) are read up to this many bytes. */
const MAX_BODY_BYTES = 64 * 1024;

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads a (small) body as JSON; undefined when it is not JSON. Throws on network errors. */
export async function readJson(body: Readable): Promise<unknown> {
  const parts: Buffer[] = [];
  let size = 0;
  // Leaving the loop early (over the cap) destroys the body: the connection is dropped.
  for await (const chunk of body) {
    parts.push(chunk as Buffer);
    size += (chunk as Buffer).byteLength;
    if (size > MAX_BODY_BYTES) break;
  }
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8'));
  } catch {
    return undefined;
  }
}
