/**
 * Join keys and worker credentials: random secrets with a kind prefix, stored only as the same
 * peppered HMAC as API keys. Neither looks like an API key (`xero_<project>_…`), so neither
 * passes Authenticate, and a worker credential is never a join key.
 *
 *   xjk_<43 base62>   join key: enrolls workers into the project that created it
 *   xwc_<43 base62>   worker credential: authenticates one worker's tunnel, nothing else
 */
import { randomBytes } from 'node:crypto';
import { hashApiKey } from '../api-key.js';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const RANDOM_CHARS = 43;
const PREFIX_CHARS = 10;

export type SecretKind = 'xjk' | 'xwc';

export interface NewSecret {
  full: string;
  /** Kind and first characters: safe to store and show. */
  prefix: string;
}

export function generateSecret(kind: SecretKind): NewSecret {
  let v = BigInt(`0x${randomBytes(32).toString('hex')}`);
  let out = '';
  while (v > 0n) {
    out = BASE62[Number(v % 62n)] + out;
    v /= 62n;
  }
  const full = `${kind}_${out.padStart(RANDOM_CHARS, '0')}`;
  return { full, prefix: full.slice(0, kind.length + 1 + PREFIX_CHARS) };
}

/** Whether `raw` has the shape of a secret of this kind (checked before any store lookup). */
export function isSecretOf(kind: SecretKind, raw: string): boolean {
  return raw.length === kind.length + 1 + RANDOM_CHARS && raw.startsWith(`${kind}_`) && /^[0-9A-Za-z]+$/.test(raw.slice(kind.length + 1));
}

export const hashSecret = (pepper: string, secret: string): string => hashApiKey(pepper, secret).toString('hex');
