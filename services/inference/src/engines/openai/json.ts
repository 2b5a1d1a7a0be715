/** Small JSON helpers for upstream bodies. */

/** Error bodies (and answers to a non-streaming request) are read up to this many bytes. */
const MAX_BODY_BYTES = 64 * 1024;

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads a (small) body as JSON; undefined when it is not JSON. Throws on network errors. */
export async function readJson(res: Response): Promise<unknown> {
  if (res.body === null) return undefined;
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      size += value.byteLength;
      if (size > MAX_BODY_BYTES) break;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8'));
  } catch {
    return undefined;
  }
}
