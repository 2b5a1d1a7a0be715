/**
 * A bounded cache of successful Authenticate results for the gateway.
 *
 * Revocation bound: an entry lives at most `ttlMs` (≤ 5,000 ms) counted from the moment the
 * Authenticate call that produced it *started*. A key revoked (or expired, or its endpoint
 * deactivated) at time r is therefore refused by every gateway replica from r + ttlMs on —
 * no cross-replica invalidation needed. `ttlMs = 0` disables caching.
 *
 * - Cache keys are keyed SHA-256 digests (per-process random secret, HMAC's nested construction)
 *   of (api key, project, endpoint, scope): the raw key is never a map key, so heap dumps or
 *   debug logs of the cache reveal nothing usable.
 * - Only successes are cached; every refusal and every error goes back to the auth service.
 * - LRU, bounded by `maxEntries`.
 * - Cached principals are shared between requests: treat them as read-only.
 */
import { hash, randomBytes } from 'node:crypto';
import type { Principal, Scope } from '../../gen/xerotier/auth/v1/auth_service.js';

/** The documented revocation bound: no configuration may exceed it. */
export const MAX_AUTH_CACHE_TTL_MS = 5_000;

export interface AuthCacheOptions {
  /** Lifetime of an entry, 0–5,000 ms. */
  ttlMs: number;
  /** LRU bound. */
  maxEntries: number;
  /** Clock in ms (tests inject one). */
  now?: (() => number) | undefined;
}

export interface AuthCache {
  /** A live entry (and marks it recently used), or undefined. */
  get(key: string): Principal | undefined;
  /** Stores a principal; `storedAt` (default now) is when its Authenticate call started. */
  set(key: string, principal: Principal, storedAt?: number): void;
  clear(): void;
  readonly size: number;
}

export interface AuthInput {
  apiKey: string;
  project: string;
  endpoint: string;
  scope: Scope;
}

export type AuthenticateFn = (input: AuthInput, requestId: string) => Promise<Principal>;

function checkOptions(options: AuthCacheOptions): void {
  if (!Number.isFinite(options.ttlMs) || options.ttlMs < 0 || options.ttlMs > MAX_AUTH_CACHE_TTL_MS) {
    throw new RangeError(`auth cache ttlMs must be between 0 and ${MAX_AUTH_CACHE_TTL_MS}`);
  }
  if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1) {
    throw new RangeError('auth cache maxEntries must be a positive integer');
  }
}

export function createAuthCache(options: AuthCacheOptions): AuthCache {
  checkOptions(options);
  const { ttlMs, maxEntries } = options;
  const now = options.now ?? Date.now;
  // Map iteration order = insertion order: the first entry is the least recently used.
  const entries = new Map<string, { principal: Principal; expiresAt: number }>();
  return {
    get(key) {
      const entry = entries.get(key);
      if (!entry) return undefined;
      entries.delete(key);
      if (now() >= entry.expiresAt) return undefined;
      entries.set(key, entry);
      return entry.principal;
    },
    set(key, principal, storedAt = now()) {
      const expiresAt = storedAt + ttlMs;
      if (ttlMs === 0 || now() >= expiresAt) return;
      entries.delete(key);
      entries.set(key, { principal, expiresAt });
      while (entries.size > maxEntries) {
        const oldest = entries.keys().next();
        if (oldest.done === true) break;
        entries.delete(oldest.value);
      }
    },
    clear() {
      entries.clear();
    },
    get size() {
      return entries.size;
    },
  };
}

/**
 * The secret of a cache's digests: HMAC's inner and outer keys (a random 64-character key, one
 * SHA-256 block, XORed with HMAC's pads) as strings, so that each digest is two one-shot
 * `crypto.hash` calls on strings (no Hmac object, key handle or Buffer per request).
 */
export interface AuthCacheSecret {
  inner: string;
  outer: string;
}

/** A new secret; `key` (64 hex characters, random by default) only for tests. */
export function authCacheSecret(key = randomBytes(32).toString('hex')): AuthCacheSecret {
  // 64 hex characters: every byte, and every byte XORed with 0x36 or 0x5c, is ASCII, so the
  // strings hash as exactly these bytes.
  if (!/^[0-9a-f]{64}$/.test(key)) throw new RangeError('auth cache key must be 64 hex characters');
  const pad = (with_: number): string => Array.from(key, (c) => String.fromCharCode(c.charCodeAt(0) ^ with_)).join('');
  return { inner: pad(0x36), outer: pad(0x5c) };
}

/**
 * SHA-256(outer ‖ hex(SHA-256(inner ‖ [apiKey, project, endpoint, scope]))) as hex: HMAC-SHA-256's
 * construction with the inner digest hex-encoded (one-to-one, so just as unambiguous); the input
 * is unambiguous too (JSON).
 */
export function authCacheKey(secret: AuthCacheSecret, input: AuthInput): string {
  const message = JSON.stringify([input.apiKey, input.project, input.endpoint, input.scope]);
  return hash('sha256', secret.outer + hash('sha256', secret.inner + message, 'hex'), 'hex');
}

/**
 * Wraps an Authenticate function (e.g. `AuthPort.authenticate`) with the cache. Same signature,
 * so it drops in where the uncached function was used.
 */
export function cachedAuthenticate(
  authenticate: AuthenticateFn,
  options: AuthCacheOptions,
): AuthenticateFn & { cache: AuthCache } {
  const cache = createAuthCache(options);
  const now = options.now ?? Date.now;
  const secret = authCacheSecret();
  const fn = async (input: AuthInput, requestId: string): Promise<Principal> => {
    const key = authCacheKey(secret, input);
    const hit = cache.get(key);
    if (hit) return hit;
    const started = now();
    const principal = await authenticate(input, requestId);
    cache.set(key, principal, started);
    return principal;
  };
  return Object.assign(fn, { cache });
}
