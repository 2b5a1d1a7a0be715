import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { Scope, type Principal } from '../../gen/xerotier/auth/v1/auth_service.js';
import { unauthenticated } from '../../lib/errors/app-error.js';
import { authCacheKey, authCacheSecret, cachedAuthenticate, createAuthCache, type AuthInput } from './auth-cache.js';

const principal = (keyId: string): Principal => ({ keyId, scopes: [Scope.SCOPE_INFERENCE] });
const input = (apiKey: string, over: Partial<AuthInput> = {}): AuthInput => ({
  apiKey,
  project: 'demo',
  endpoint: 'chat',
  scope: Scope.SCOPE_INFERENCE,
  ...over,
});

class Clock {
  t = 1_000_000;
  now = (): number => this.t;
}

/** A fake auth service: keys are valid unless revoked; counts calls. */
function fakeAuth(clock?: Clock, latencyMs = 0) {
  const revoked = new Set<string>();
  let calls = 0;
  const fn = async (i: AuthInput): Promise<Principal> => {
    calls += 1;
    if (clock) clock.t += latencyMs;
    if (revoked.has(i.apiKey)) throw unauthenticated('This API key has been revoked.');
    return principal(`key_for_${i.apiKey.length}`);
  };
  return { fn, revoked, calls: () => calls };
}

describe('auth cache', () => {
  it('expires an entry exactly at ttl', () => {
    const clock = new Clock();
    const cache = createAuthCache({ ttlMs: 5000, maxEntries: 10, now: clock.now });
    cache.set('k', principal('a'));
    clock.t += 4999;
    assert.equal(cache.get('k')?.keyId, 'a');
    clock.t += 1;
    assert.equal(cache.get('k'), undefined);
    assert.equal(cache.size, 0, 'expired entries are dropped');
  });

  it('refuses a revoked key once ttl has passed since revocation', async () => {
    const clock = new Clock();
    const auth = fakeAuth();
    const cached = cachedAuthenticate(auth.fn, { ttlMs: 5000, maxEntries: 100, now: clock.now });
    const key = 'xero_demo_secret';
    await cached(input(key), 'r1');
    await cached(input(key), 'r2');
    assert.equal(auth.calls(), 1, 'second call served from cache');

    clock.t += 1000;
    auth.revoked.add(key); // revocation at r = t0 + 1000
    const revokedAt = clock.t;
    // Within the bound a replica may still admit the key from its cache ...
    await cached(input(key), 'r3');
    // ... but never at or after r + ttl.
    clock.t = revokedAt + 5000;
    await assert.rejects(cached(input(key), 'r4'), /revoked/);
    await assert.rejects(cached(input(key), 'r5'), /revoked/);
    assert.equal(auth.calls(), 3, 'refusals are not cached');
  });

  it('counts the ttl from the start of the Authenticate call, not its end', async () => {
    const clock = new Clock();
    const auth = fakeAuth(clock, 3000); // a slow auth call
    const cached = cachedAuthenticate(auth.fn, { ttlMs: 5000, maxEntries: 100, now: clock.now });
    const started = clock.t;
    await cached(input('k'), 'r');
    assert.equal(clock.t, started + 3000);
    clock.t = started + 4999;
    await cached(input('k'), 'r');
    assert.equal(auth.calls(), 1);
    clock.t = started + 5000;
    await cached(input('k'), 'r');
    assert.equal(auth.calls(), 2);
  });

  it('does not cache failures', async () => {
    const auth = fakeAuth();
    auth.revoked.add('bad');
    const cached = cachedAuthenticate(auth.fn, { ttlMs: 5000, maxEntries: 100 });
    await assert.rejects(cached(input('bad'), 'r'));
    await assert.rejects(cached(input('bad'), 'r'));
    assert.equal(auth.calls(), 2);
    assert.equal(cached.cache.size, 0);
  });

  it('keys entries by key, project, endpoint and scope', async () => {
    const auth = fakeAuth();
    const cached = cachedAuthenticate(auth.fn, { ttlMs: 5000, maxEntries: 100 });
    await cached(input('k'), 'r');
    await cached(input('k', { project: 'other' }), 'r');
    await cached(input('k', { endpoint: 'other' }), 'r');
    await cached(input('k', { endpoint: '' }), 'r');
    await cached(input('k', { scope: Scope.SCOPE_MANAGEMENT }), 'r');
    await cached(input('k2'), 'r');
    assert.equal(auth.calls(), 6);
    await cached(input('k'), 'r');
    assert.equal(auth.calls(), 6);
  });

  it('derives opaque cache keys that never contain the API key', () => {
    const secret = authCacheSecret('07'.repeat(32));
    const apiKey = 'xero_demo_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghijklm';
    const k = authCacheKey(secret, input(apiKey));
    assert.match(k, /^[0-9a-f]{64}$/);
    assert.ok(!k.includes('xero'));
    assert.notEqual(authCacheKey(authCacheSecret('08'.repeat(32)), input(apiKey)), k, 'salted per process');
    assert.notEqual(authCacheKey(authCacheSecret(), input(apiKey)), authCacheKey(authCacheSecret(), input(apiKey)), 'a random secret by default');
    // Field boundaries are unambiguous.
    assert.notEqual(
      authCacheKey(secret, input('a', { project: 'bc', endpoint: '' })),
      authCacheKey(secret, input('ab', { project: 'c', endpoint: '' })),
    );
  });

  it('keys both layers of the digest with the secret, as HMAC does', () => {
    const key = 'c0ffee'.repeat(10) + 'beef';
    const pad = (byte: number) => Buffer.from(Buffer.from(key, 'latin1').map((b) => b ^ byte));
    const message = JSON.stringify(['xero_demo_k', 'demo', 'chat', Scope.SCOPE_INFERENCE]);
    const inner = createHash('sha256').update(pad(0x36)).update(message).digest('hex');
    const expected = createHash('sha256').update(pad(0x5c)).update(inner).digest('hex');
    assert.equal(authCacheKey(authCacheSecret(key), input('xero_demo_k')), expected);
    assert.throws(() => authCacheSecret('short'), RangeError);
  });

  it('evicts the least recently used entry beyond maxEntries', () => {
    const cache = createAuthCache({ ttlMs: 5000, maxEntries: 2 });
    cache.set('a', principal('a'));
    cache.set('b', principal('b'));
    assert.ok(cache.get('a')); // a is now the most recent
    cache.set('c', principal('c'));
    assert.equal(cache.size, 2);
    assert.equal(cache.get('b'), undefined);
    assert.ok(cache.get('a'));
    assert.ok(cache.get('c'));
    cache.clear();
    assert.equal(cache.size, 0);
  });

  it('enforces the revocation bound and supports ttl 0 (off)', async () => {
    assert.throws(() => createAuthCache({ ttlMs: 5001, maxEntries: 1 }), RangeError);
    assert.throws(() => createAuthCache({ ttlMs: 100, maxEntries: 0 }), RangeError);
    const auth = fakeAuth();
    const off = cachedAuthenticate(auth.fn, { ttlMs: 0, maxEntries: 10 });
    await off(input('k'), 'r');
    await off(input('k'), 'r');
    assert.equal(auth.calls(), 2);
  });
});
