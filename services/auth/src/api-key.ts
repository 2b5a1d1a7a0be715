/**
 * API key format, parsing and hashing. Pure functions, no I/O.
 *
 *   xero_<project-slug>_<secret>     secret = base62(32 random bytes, 43 chars) + checksum (6 chars)
 *
 * The checksum (base62 of the first 4 bytes of SHA-256 over `xero_<slug>_<random part>`) lets the
 * parser reject typos and garbage offline, before any store lookup. Only HMAC-SHA-256(pepper, key)
 * is stored; the full key exists in memory only while a request carries it.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const KEY_PREFIX = 'xero';
export const PROJECT_SLUG = /^[a-z0-9][a-z0-9-]{0,39}$/;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const RANDOM_BYTES = 32;
/** ceil(256 / log2(62)) */
export const RANDOM_CHARS = 43;
export const CHECKSUM_CHARS = 6;
export const SECRET_CHARS = RANDOM_CHARS + CHECKSUM_CHARS;
/** Characters of the secret shown in the display prefix. */
const PREFIX_SECRET_CHARS = 6;
const MIN_KEY_LENGTH = KEY_PREFIX.length + 1 + 1 + 1 + SECRET_CHARS;
const MAX_KEY_LENGTH = KEY_PREFIX.length + 1 + 40 + 1 + SECRET_CHARS;
/** The parser accepts any `[a-z0-9-]{1,40}` slug (a superset of what can be created). */
const KEY_SHAPE = /^xero_([a-z0-9-]{1,40})_([0-9A-Za-z]{43})([0-9A-Za-z]{6})$/;

export interface ParsedApiKey {
  /** Project slug embedded in the key. */
  projectSlug: string;
  /** The full key as given (already validated). */
  full: string;
}

export interface NewApiKey {
  /** The full key; returned to the caller once, never stored or logged. */
  full: string;
  /** `xero_<slug>_` + first 6 secret characters; safe to store and display. */
  prefix: string;
}

function base62(value: bigint, width: number): string {
  let out = '';
  let v = value;
  while (v > 0n) {
    out = BASE62[Number(v % 62n)] + out;
    v /= 62n;
  }
  return out.padStart(width, '0');
}

function checksum(projectSlug: string, randomPart: string): string {
  const digest = createHash('sha256').update(`${KEY_PREFIX}_${projectSlug}_${randomPart}`).digest();
  return base62(BigInt(digest.readUInt32BE(0)), CHECKSUM_CHARS);
}

/** Mints a new key for a project slug (which must already be valid). */
export function generateApiKey(projectSlug: string): NewApiKey {
  if (!PROJECT_SLUG.test(projectSlug)) throw new Error('invalid project slug for an API key');
  const randomPart = base62(BigInt(`0x${randomBytes(RANDOM_BYTES).toString('hex')}`), RANDOM_CHARS);
  const full = `${KEY_PREFIX}_${projectSlug}_${randomPart}${checksum(projectSlug, randomPart)}`;
  return { full, prefix: displayPrefix(projectSlug, randomPart) };
}

export function displayPrefix(projectSlug: string, secret: string): string {
  return `${KEY_PREFIX}_${projectSlug}_${secret.slice(0, PREFIX_SECRET_CHARS)}`;
}

/**
 * Validates a key offline: shape, charset, length and checksum. Returns undefined for anything
 * that is not a well-formed key; callers must then refuse it without touching the store.
 */
export function parseApiKey(raw: unknown): ParsedApiKey | undefined {
  if (typeof raw !== 'string' || raw.length < MIN_KEY_LENGTH || raw.length > MAX_KEY_LENGTH) return undefined;
  const m = KEY_SHAPE.exec(raw);
  if (!m) return undefined;
  const [, projectSlug, randomPart, check] = m;
  if (projectSlug === undefined || randomPart === undefined || check === undefined) return undefined;
  if (checksum(projectSlug, randomPart) !== check) return undefined;
  return { projectSlug, full: raw };
}

/** HMAC-SHA-256(pepper, key): the only form in which a key is stored (hex). */
export function hashApiKey(pepper: string, key: string): Buffer {
  return createHmac('sha256', pepper).update(key).digest();
}

/** Constant-time comparison of a stored hex hash with a computed digest. */
export function hashMatches(storedHex: string, digest: Buffer): boolean {
  const stored = Buffer.from(storedHex, 'hex');
  return stored.length === digest.length && timingSafeEqual(stored, digest);
}
