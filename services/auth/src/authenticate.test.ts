/**
 * Authenticate against both stores (SQLite and PostgreSQL): every refusal in its order, scopes,
 * endpoint binding, tenant isolation, fuzzing of malformed keys, last-used bookkeeping and log
 * hygiene. Time is an injected clock.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Scope } from '../../../gen/xerotier/auth/v1/auth_service.js';
import { isAppError } from '../../../lib/errors/app-error.js';
import { generateApiKey } from './api-key.js';
import { LAST_USED_INTERVAL_MS } from './authenticate.js';
import { KEY_MATERIAL, STORE_KINDS, countingStore, openTestStore, type TestStore } from '../../../test/support/auth-stores.js';
import { captureLogger } from '../../../test/helpers/log-capture.js';
import { Clock, INFERENCE, MANAGEMENT, fixture, makeService, rejectsWith, req } from '../../../test/support/auth-service-fixture.js';

for (const kind of STORE_KINDS) {
  describe(`Authenticate (${kind})`, () => {
    let db: TestStore;
    before(async () => {
      db = await openTestStore(kind);
    });
    after(async () => {
      await db?.cleanup();
    });

    it('authenticates a key by project slug and by id, then refuses it once revoked', async () => {
      const service = makeService(db.store);
      const f = await fixture(service);
      const bySlug = await service.authenticate(req(f.keys.full, f.slug));
      assert.equal(bySlug.principal?.keyId, f.keyIds.full);
      assert.equal(bySlug.principal?.project?.slug, f.slug);
      assert.equal(bySlug.principal?.project?.id, f.id);
      assert.equal(bySlug.principal?.endpoint?.slug, 'chat');
      assert.equal(bySlug.principal?.endpoint?.tier, 'cpu_standard');
      assert.equal(bySlug.principal?.endpoint?.hardwarePool, 'cpu');
      assert.equal(bySlug.principal?.endpoint?.contextWindow, 2048);
      assert.equal(bySlug.principal?.endpoint?.model, 'smollm2-135m-instruct');
      assert.deepEqual(bySlug.principal?.scopes, [INFERENCE, MANAGEMENT]);
      const byId = await service.authenticate(req(f.keys.full, f.id));
      assert.equal(byId.principal?.keyId, f.keyIds.full);
      const projectRoute = await service.authenticate(req(f.keys.full, f.slug, '', MANAGEMENT));
      assert.equal(projectRoute.principal?.endpoint, undefined);

      const revoked = await service.revokeApiKey({ project: f.slug, keyId: f.keyIds.full });
      assert.equal(revoked.apiKey?.revoked, true);
      // Revoking twice is harmless.
      assert.equal((await service.revokeApiKey({ project: f.id, keyId: f.keyIds.full })).apiKey?.revoked, true);
      const err = await rejectsWith(service.authenticate(req(f.keys.full, f.slug)), 'unauthenticated', 'invalid_api_key');
      assert.ok(!err.message.includes(f.keys.full.slice(10)), 'message must not echo the key');
    });

    it('refuses unknown keys, keys hashed with another pepper, and the wrong project slug inside a key', async () => {
      const service = makeService(db.store);
      const f = await fixture(service);
      await rejectsWith(service.authenticate(req(generateApiKey(f.slug).full, f.slug)), 'unauthenticated', 'invalid_api_key');
      const otherPepper = makeService(db.store, { pepper: 'another-pepper-0123456789' });
      await rejectsWith(otherPepper.authenticate(req(f.keys.full, f.slug)), 'unauthenticated', 'invalid_api_key');
      await rejectsWith(service.authenticate(req('', f.slug)), 'unauthenticated', 'invalid_api_key');
    });

    it('enforces scopes and names the surface', async () => {
      const service = makeService(db.store);
      const f = await fixture(service);
      const e1 = await rejectsWith(
        service.authenticate(req(f.keys.inference, f.slug, '', MANAGEMENT)),
        'permission_denied',
        'scope_insufficient',
      );
      assert.match(e1.message, /management/);
      const e2 = await rejectsWith(service.authenticate(req(f.keys.management, f.slug, 'chat', INFERENCE)), 'permission_denied', 'scope_insufficient');
      assert.match(e2.message, /inference/);
      await service.authenticate(req(f.keys.management, f.slug, '', MANAGEMENT));
      await rejectsWith(service.authenticate(req(f.keys.full, f.slug, 'chat', Scope.SCOPE_UNSPECIFIED)), 'invalid_request', 'invalid_request');
    });

    it('holds an endpoint-bound key to its endpoint', async () => {
      const service = makeService(db.store);
      const f = await fixture(service);
      await service.authenticate(req(f.keys.bound, f.slug, 'chat'));
      await rejectsWith(service.authenticate(req(f.keys.bound, f.slug, 'other')), 'permission_denied', 'endpoint_mismatch');
      await rejectsWith(service.authenticate(req(f.keys.bound, f.slug, 'missing')), 'permission_denied', 'endpoint_mismatch');
      await rejectsWith(
        service.createApiKey({ project: f.slug, name: 'x', scopes: [], endpointSlug: 'missing', expireTime: undefined }),
        'not_found',
        'endpoint_not_found',
      );
    });

    it('isolates tenants: a valid key of A on project B is 403, whether B exists or not', async () => {
      const service = makeService(db.store);
      const a = await fixture(service, 'tenant-a');
      const b = await fixture(service, 'tenant-b');
      for (const project of [b.slug, b.id, 'no-such-project', 'proj_000000000000000000000000', '', a.slug.toUpperCase(), `${a.slug} `]) {
        for (const [endpoint, scope] of [['chat', INFERENCE], ['', MANAGEMENT], ['missing', INFERENCE]] as const) {
          await rejectsWith(service.authenticate(req(a.keys.full, project, endpoint, scope)), 'permission_denied', 'cross_project_access');
        }
      }
      // Scope or binding problems never leak across tenants either: the project check comes first.
      await rejectsWith(service.authenticate(req(a.keys.inference, b.slug, '', MANAGEMENT)), 'permission_denied', 'cross_project_access');
      await rejectsWith(service.authenticate(req(a.keys.bound, b.slug, 'other')), 'permission_denied', 'cross_project_access');
      // An invalid key learns nothing: 401 regardless of the project.
      for (const project of [b.slug, 'no-such-project', a.slug]) {
        await rejectsWith(service.authenticate(req(generateApiKey(a.slug).full, project)), 'unauthenticated', 'invalid_api_key');
      }
    });

    it('reports unknown endpoints (404) and inactive endpoints (503) of the key\'s own project', async () => {
      const service = makeService(db.store);
      const f = await fixture(service);
      await rejectsWith(service.authenticate(req(f.keys.full, f.slug, 'missing')), 'not_found', 'endpoint_not_found');
      await rejectsWith(service.authenticate(req(f.keys.full, f.slug, 'Chat')), 'not_found', 'endpoint_not_found');
      const inactive = await rejectsWith(service.authenticate(req(f.keys.full, f.slug, 'off')), 'unavailable', 'endpoint_inactive');
      assert.equal(isAppError(inactive) ? inactive.retryAfterSeconds : undefined, 30);
      await service.setEndpointActive({ project: f.slug, endpoint: 'off', active: true });
      assert.equal((await service.authenticate(req(f.keys.full, f.slug, 'off'))).principal?.endpoint?.active, true);
    });

    it('fuzz: 2,000+ malformed keys are always UNAUTHENTICATED with zero store lookups', async () => {
      const counted = countingStore(db.store);
      const service = makeService(counted.store);
      const valid = generateApiKey('demo').full;
      const secretAt = 'xero_demo_'.length;
      const alnum = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
      const mutateChar = fc.tuple(fc.nat(), fc.nat()).map(([p, c]) => {
        const pos = p % valid.length;
        const pool = alnum.replace(valid[pos] ?? '', '') + '_-é ';
        return valid.slice(0, pos) + pool[c % pool.length] + valid.slice(pos + 1);
      })
        // At an underscore the pool still holds '_', which would rebuild the valid key itself.
        .filter((k) => k !== valid);
      const badChecksum = fc
        .string({ minLength: 6, maxLength: 6, unit: fc.constantFrom(...alnum) })
        .filter((c) => c !== valid.slice(-6))
        .map((c) => valid.slice(0, -6) + c);
      const malformed = fc.oneof(
        fc.string(),
        fc.string({ unit: 'binary', maxLength: 120 }),
        fc.string({ unit: 'grapheme', maxLength: 120 }).map((s) => `xero_demo_${s}`),
        fc.constant(''),
        fc.string({ minLength: 500, maxLength: 5000 }),
        fc.nat({ max: 100_000 }).map((n) => `xero_demo_${'A'.repeat(n)}`),
        fc.constantFrom('sk-', 'xero-', 'XERO_', 'xeroo_', 'xer_', 'Bearer xero_', ' xero_').map((p) => p + valid.slice(5)),
        badChecksum,
        mutateChar,
        fc.nat({ max: valid.length }).map((i) => valid.slice(0, i) + '_' + valid.slice(i)),
        fc.nat({ max: valid.length - 1 }).map((i) => valid.slice(0, i)),
        fc.string({ minLength: 1, maxLength: 10, unit: fc.constantFrom(...alnum) }).map((s) => valid + s),
        fc.constant(valid.slice(0, secretAt) + valid.slice(secretAt).toLowerCase()),
      );
      let runs = 0;
      await fc.assert(
        fc.asyncProperty(malformed, fc.constantFrom('demo', 'other', ''), fc.constantFrom(INFERENCE, MANAGEMENT), async (key, project, scope) => {
          runs += 1;
          try {
            await service.authenticate(req(key, project, 'chat', scope));
            assert.fail('malformed key accepted');
          } catch (err) {
            assert.ok(isAppError(err), String(err));
            assert.equal(err.kind, 'unauthenticated');
            assert.equal(err.code, 'invalid_api_key');
            // Fixed messages only: nothing of the key is echoed.
            assert.ok(['Invalid API key.', 'Missing API key.'].includes(err.message), err.message);
          }
        }),
        { numRuns: 2500 },
      );
      assert.ok(runs >= 2000);
      assert.equal(counted.total(), 0, `store lookups: ${JSON.stringify([...counted.calls])}`);
      // Control: a well-formed key does reach the store exactly once.
      await rejectsWith(service.authenticate(req(valid, 'demo')), 'unauthenticated', 'invalid_api_key');
      assert.equal(counted.calls.get('findKeyForAuth'), 1);
    });

    it('writes last_used at most once a minute per key', async () => {
      const clock = new Clock();
      const counted = countingStore(db.store);
      const service = makeService(counted.store, { clock });
      const f = await fixture(service);
      const touches = (): number => counted.calls.get('touchApiKey') ?? 0;
      await service.authenticate(req(f.keys.full, f.slug));
      assert.equal(touches(), 1);
      const first = await service.getApiKey({ project: f.slug, keyId: f.keyIds.full });
      assert.equal(first.apiKey?.lastUsedTime?.getTime(), clock.t);
      clock.advance(1_000);
      for (let i = 0; i < 5; i++) await service.authenticate(req(f.keys.full, f.slug));
      assert.equal(touches(), 1);
      clock.advance(LAST_USED_INTERVAL_MS);
      await service.authenticate(req(f.keys.full, f.slug));
      assert.equal(touches(), 2);
      const later = await service.getApiKey({ project: f.slug, keyId: f.keyIds.full });
      assert.equal(later.apiKey?.lastUsedTime?.getTime(), clock.t);
    });

    it('never logs key material', async () => {
      const logs = captureLogger();
      const service = makeService(db.store, { logger: logs.logger });
      const f = await fixture(service);
      const rotated = await service.rotateApiKey({ project: f.slug, keyId: f.keyIds.full, graceSeconds: 60 }, { logger: logs.logger });
      await service.revokeApiKey({ project: f.slug, keyId: rotated.apiKey?.id ?? '' }, { logger: logs.logger });
      await service.createApiKey({ project: f.slug, name: 'logged', scopes: [], endpointSlug: '', expireTime: undefined }, { logger: logs.logger });
      for (const key of [f.keys.full, rotated.secret, f.keys.bound, 'xero_demo_' + 'x'.repeat(49)]) {
        await service.authenticate(req(key, f.slug, 'other'), { logger: logs.logger }).catch((err: unknown) => logs.logger.info({ err }, 'auth failed'));
      }
      assert.ok(logs.lines.length > 3, 'the lifecycle was logged');
      assert.deepEqual(logs.text().match(KEY_MATERIAL) ?? [], []);
    });
  });
}
