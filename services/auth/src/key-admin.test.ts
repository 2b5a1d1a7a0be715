/**
 * The admin RPCs as an operator calls them (no actor) against both stores: key rotation with its
 * grace period, revocation, expiry, paging, input validation and project isolation. Time is an
 * injected clock.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Scope } from '../../../gen/xerotier/auth/v1/auth_service.js';
import { MAX_EXPIRES_AT_MS } from '../../../lib/auth/expiry.js';
import { isAppError } from '../../../lib/errors/app-error.js';
import type { AuthService } from './auth-service.js';
import { STORE_KINDS, openTestStore, type TestStore } from '../../../test/support/auth-stores.js';
import { Clock, INFERENCE, MANAGEMENT, fixture, makeService, rejectsWith, req, uniqueSlug } from '../../../test/support/auth-service-fixture.js';

for (const kind of STORE_KINDS) {
  describe(`Admin RPCs (${kind})`, () => {
    let db: TestStore;
    before(async () => {
      db = await openTestStore(kind);
    });
    after(async () => {
      await db?.cleanup();
    });

    it('rotates: the new key works, the old one works until the grace period ends', async () => {
      const clock = new Clock();
      const service = makeService(db.store, { clock });
      const f = await fixture(service);
      const bound = await service.createApiKey({
        project: f.slug,
        name: 'rotating',
        scopes: [INFERENCE, MANAGEMENT],
        endpointSlug: 'chat',
        expireTime: new Date(clock.t + 10 * 86_400_000),
      });
      const oldId = bound.apiKey?.id ?? '';
      const rotated = await service.rotateApiKey({ project: f.slug, keyId: oldId, graceSeconds: 60 });
      assert.ok(rotated.apiKey && rotated.previousApiKey);
      assert.notEqual(rotated.secret, bound.secret);
      assert.equal(rotated.apiKey.rotatedFromKeyId, oldId);
      assert.deepEqual(rotated.apiKey.scopes, [INFERENCE, MANAGEMENT]);
      assert.equal(rotated.apiKey.endpointSlug, 'chat');
      assert.equal(rotated.apiKey.name, 'rotating');
      assert.equal(rotated.apiKey.expireTime?.getTime(), clock.t + 10 * 86_400_000);
      assert.equal(rotated.previousApiKey.graceExpireTime?.getTime(), clock.t + 60_000);

      await service.authenticate(req(rotated.secret, f.slug));
      await service.authenticate(req(bound.secret, f.slug));
      clock.advance(59_999);
      await service.authenticate(req(bound.secret, f.slug));
      clock.advance(1);
      await rejectsWith(service.authenticate(req(bound.secret, f.slug)), 'unauthenticated', 'invalid_api_key');
      await service.authenticate(req(rotated.secret, f.slug));

      // A rotated key cannot be rotated again (rotate its replacement); a revoked one neither.
      await rejectsWith(service.rotateApiKey({ project: f.slug, keyId: oldId, graceSeconds: 0 }), 'invalid_request', 'api_key_not_rotatable');
      const again = await service.rotateApiKey({ project: f.slug, keyId: rotated.apiKey.id, graceSeconds: 0 });
      assert.equal(again.previousApiKey?.graceExpireTime?.getTime(), clock.t + 86_400_000, 'default grace is 24 h');
      await service.revokeApiKey({ project: f.slug, keyId: again.apiKey?.id ?? '' });
      await rejectsWith(
        service.rotateApiKey({ project: f.slug, keyId: again.apiKey?.id ?? '', graceSeconds: 0 }),
        'invalid_request',
        'api_key_not_rotatable',
      );
      await rejectsWith(service.rotateApiKey({ project: f.slug, keyId: again.apiKey?.id ?? '', graceSeconds: -1 }), 'invalid_request', 'invalid_request');
    });

    it('revoking a key during its grace period ends it at once', async () => {
      const clock = new Clock();
      const service = makeService(db.store, { clock });
      const f = await fixture(service);
      const rotated = await service.rotateApiKey({ project: f.slug, keyId: f.keyIds.full, graceSeconds: 3600 });
      await service.authenticate(req(f.keys.full, f.slug));
      await service.revokeApiKey({ project: f.slug, keyId: f.keyIds.full });
      await rejectsWith(service.authenticate(req(f.keys.full, f.slug)), 'unauthenticated', 'invalid_api_key');
      await service.authenticate(req(rotated.secret, f.slug));
    });

    it('refuses an expired key, and refuses to create one that is already expired', async () => {
      const clock = new Clock();
      const service = makeService(db.store, { clock });
      const f = await fixture(service);
      const created = await service.createApiKey({
        project: f.slug,
        name: 'short',
        scopes: [],
        endpointSlug: '',
        expireTime: new Date(clock.t + 10_000),
      });
      assert.deepEqual(created.apiKey?.scopes, [INFERENCE], 'empty scopes = inference only');
      await service.authenticate(req(created.secret, f.slug));
      clock.advance(10_000);
      await rejectsWith(service.authenticate(req(created.secret, f.slug)), 'unauthenticated', 'invalid_api_key');
      await rejectsWith(
        service.createApiKey({ project: f.slug, name: 'x', scopes: [], endpointSlug: '', expireTime: new Date(clock.t) }),
        'invalid_request',
        'invalid_request',
      );
    });

    it('refuses an expiry no Timestamp, Date or database column can hold, naming expires_at', async () => {
      const clock = new Clock();
      const service = makeService(db.store, { clock });
      const f = await fixture(service);
      const create = (expireTime: Date) =>
        service.createApiKey({ project: f.slug, name: 'x', scopes: [], endpointSlug: '', expireTime });
      // 1e15 s is what a client sending `expires_at: 1e15` means; the server decodes it as an invalid Date.
      for (const ms of [1e15 * 1000, Number.NaN, 8.64e15, MAX_EXPIRES_AT_MS + 1000, clock.t - 1, clock.t]) {
        const err = await rejectsWith(create(new Date(ms)), 'invalid_request', 'invalid_request');
        assert.equal(isAppError(err) ? err.param : undefined, 'expires_at', String(ms));
        assert.match(err.message, /^expires_at /);
      }
      // The latest expiry is accepted, stored and read back exactly.
      const latest = await create(new Date(MAX_EXPIRES_AT_MS));
      assert.equal(latest.apiKey?.expireTime?.getTime(), MAX_EXPIRES_AT_MS);
      assert.equal((await service.getApiKey({ project: f.slug, keyId: latest.apiKey?.id ?? '' })).apiKey?.expireTime?.toISOString(), '9999-12-31T23:59:59.000Z');
      await service.authenticate(req(latest.secret, f.slug));
    });

    it('lists keys in pages with a cursor', async () => {
      const service = makeService(db.store);
      const f = await fixture(service);
      const all: string[] = [];
      let after = '';
      for (let page = 0; page < 10; page++) {
        const res = await service.listApiKeys({ project: f.slug, pageSize: 3, after });
        all.push(...res.apiKeys.map((k) => k.id));
        for (const k of res.apiKeys) assert.equal(Object.hasOwn(k, 'secret'), false);
        if (!res.hasMore) break;
        after = res.apiKeys.at(-1)?.id ?? '';
      }
      const everything = await service.listApiKeys({ project: f.id, pageSize: 0, after: '' });
      assert.equal(everything.hasMore, false);
      assert.equal(all.length, 4);
      assert.deepEqual(all, everything.apiKeys.map((k) => k.id));
      assert.equal((await service.listApiKeys({ project: f.slug, pageSize: 4, after: '' })).hasMore, false);
      assert.equal((await service.listApiKeys({ project: f.slug, pageSize: 3, after: '' })).hasMore, true);
      await rejectsWith(service.listApiKeys({ project: f.slug, pageSize: 101, after: '' }), 'invalid_request', 'invalid_request');
      await rejectsWith(service.listApiKeys({ project: f.slug, pageSize: -1, after: '' }), 'invalid_request', 'invalid_request');
      await rejectsWith(service.listApiKeys({ project: f.slug, pageSize: 1, after: 'key_nope' }), 'invalid_request', 'invalid_request');
    });

    it('validates admin input and scopes every key operation to its project', async () => {
      const service = makeService(db.store);
      const a = await fixture(service, 'admin-a');
      const b = await fixture(service, 'admin-b');
      for (const slug of ['', 'Upper', 'has_underscore', '-leading', 'x'.repeat(41), 'spa ce', 'ünï']) {
        await rejectsWith(service.createProject({ slug, name: '' }), 'invalid_request', 'invalid_request');
      }
      await rejectsWith(service.createProject({ slug: a.slug, name: '' }), 'invalid_request', 'project_exists');
      await rejectsWith(service.createProject({ slug: uniqueSlug('n'), name: 'bad\u0000name' }), 'invalid_request', 'invalid_request');
      const endpoint = (over: Partial<Parameters<AuthService['createEndpoint']>[0]>) =>
        service.createEndpoint({ project: a.slug, slug: 'new', tier: 'cpu_standard', model: 'm', hardwarePool: '', contextWindow: 0, ...over });
      await rejectsWith(endpoint({ tier: 'gold' }), 'invalid_request', 'invalid_request');
      await rejectsWith(endpoint({ hardwarePool: 'gpu-nvidia' }), 'invalid_request', 'invalid_request');
      await rejectsWith(endpoint({ model: '' }), 'invalid_request', 'invalid_request');
      await rejectsWith(endpoint({ contextWindow: -5 }), 'invalid_request', 'invalid_request');
      await rejectsWith(endpoint({ slug: 'chat' }), 'invalid_request', 'endpoint_exists');
      await rejectsWith(endpoint({ project: 'nope' }), 'not_found', 'project_not_found');
      const created = await endpoint({ tier: 'free', slug: 'freebie' });
      assert.equal(created.endpoint?.hardwarePool, 'cpu', "defaults to the tier's first pool");
      assert.equal(created.endpoint?.contextWindow, 4096);
      assert.equal((await endpoint({ tier: 'free', slug: 'amd', hardwarePool: 'cpu-amd' })).endpoint?.hardwarePool, 'cpu-amd');
      await rejectsWith(service.setEndpointActive({ project: a.slug, endpoint: 'nope', active: false }), 'not_found', 'endpoint_not_found');
      assert.deepEqual(
        (await service.listEndpoints({ project: a.id })).endpoints.map((e) => e.slug).sort(),
        ['amd', 'chat', 'freebie', 'off', 'other'],
      );
      await rejectsWith(
        service.createApiKey({ project: a.slug, name: 'x', scopes: [Scope.SCOPE_UNSPECIFIED], endpointSlug: '', expireTime: undefined }),
        'invalid_request',
        'invalid_request',
      );
      // Key ids of another project are invisible.
      await rejectsWith(service.getApiKey({ project: b.slug, keyId: a.keyIds.full }), 'not_found', 'api_key_not_found');
      await rejectsWith(service.revokeApiKey({ project: b.slug, keyId: a.keyIds.full }), 'not_found', 'api_key_not_found');
      await rejectsWith(service.rotateApiKey({ project: b.slug, keyId: a.keyIds.full, graceSeconds: 0 }), 'not_found', 'api_key_not_found');
      await service.authenticate(req(a.keys.full, a.slug));
      const got = await service.getApiKey({ project: a.slug, keyId: a.keyIds.full });
      assert.equal(got.apiKey?.prefix, a.keys.full.slice(0, `xero_${a.slug}_`.length + 6));
      const projects = (await service.listProjects({})).projects.map((p) => p.slug);
      assert.ok(projects.includes(a.slug) && projects.includes(b.slug));
    });
  });
}
