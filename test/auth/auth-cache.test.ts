/**
 * The gateway's auth cache in front of a real auth service: a revoked key is admitted from the
 * cache at most until ttl after the call that cached it started, then refused (injected clock;
 * revocation itself is immediate in the auth service).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Scope, type Principal } from '../../gen/xerotier/auth/v1/auth_service.js';
import { callOptions } from '../../lib/grpc/client.js';
import { isAppError } from '../../lib/errors/app-error.js';
import { cachedAuthenticate, type AuthInput } from '../../gateway/src/auth-cache.js';
import { startTestAuth, type TestAuth } from './helpers.js';

describe('auth cache against the auth service', () => {
  let t: TestAuth;
  before(async () => {
    t = await startTestAuth('sqlite');
  });
  after(async () => {
    await t?.stop();
  });

  it('refuses a revoked key on the first call at or after ttl', async () => {
    let now = 1_000_000;
    let calls = 0;
    const authenticate = async (input: AuthInput, requestId: string): Promise<Principal> => {
      calls += 1;
      const res = await t.client.authenticate(
        { apiKey: input.apiKey, project: input.project, endpoint: input.endpoint, requiredScope: input.scope },
        callOptions(requestId),
      );
      assert.ok(res.principal);
      return res.principal;
    };
    const cached = cachedAuthenticate(authenticate, { ttlMs: 5000, maxEntries: 100, now: () => now });
    const created = await t.client.createApiKey({ project: 'demo', name: 'cached', scopes: [], endpointSlug: '', expireTime: undefined });
    const input: AuthInput = { apiKey: created.secret, project: 'demo', endpoint: 'chat', scope: Scope.SCOPE_INFERENCE };

    assert.equal((await cached(input, 'r1')).keyId, created.apiKey?.id);
    await t.client.revokeApiKey({ project: 'demo', keyId: created.apiKey?.id ?? '' });
    now += 4999;
    assert.equal((await cached(input, 'r2')).keyId, created.apiKey?.id, 'still cached inside the bound');
    assert.equal(calls, 1);
    now += 1;
    await assert.rejects(cached(input, 'r3'), (err: unknown) => isAppError(err) && err.code === 'invalid_api_key');
    await assert.rejects(cached(input, 'r4'), (err: unknown) => isAppError(err) && err.code === 'invalid_api_key');
    assert.equal(calls, 3, 'refusals are not cached');
  });
});
