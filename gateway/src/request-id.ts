/**
 * The gateway's request ids (`req_` + 24 hex digits, 96 random bits), drawn from a block of
 * random bytes filled once per 512 ids instead of one `randomBytes` call (a fresh buffer and a
 * synchronous fill) per request. The bytes come from the same CSPRNG; a block's bytes are never
 * handed out twice. One generator per process, made in the composition root.
 */
import { randomFillSync } from 'node:crypto';

const ID_BYTES = 12;
const IDS_PER_BLOCK = 512;

export type RequestIds = () => string;

export function createRequestIds(): RequestIds {
  const block = Buffer.allocUnsafe(ID_BYTES * IDS_PER_BLOCK);
  let next = block.length; // empty: filled on first use
  return () => {
    if (next === block.length) {
      randomFillSync(block);
      next = 0;
    }
    const id = `req_${block.toString('hex', next, next + ID_BYTES)}`;
    next += ID_BYTES;
    return id;
  };
}
