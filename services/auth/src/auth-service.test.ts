/**
 * AuthService against both stores (SQLite and PostgreSQL): key lifecycle, rotation, expiry,
 * scopes, endpoint binding, tenant isolation, fuzzing of malformed keys, log hygiene, admin RPCs
 * and the demo seed. Time is an injected clock.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { Logger } from 'pino';
import { Scope, type AuthenticateRequest } from '../../../gen/xerotier/auth/v1/auth_service.js';
import { isAppError, type ErrorKind } from '../../../lib/errors/app-error.js';
import { loadTierTable } from '../../../lib/tiers/tier-table.js';
import { generateApiKey } from './api-key.js';
import { createAuthService, type AuthService } from './auth-service.js';
import { LAST_USED_INTERVAL_MS } from './authenticate.js';
import { DEMO, seedDemo } from './seed.js';
import type { AuthStore } from './stores/store.js';
import {
  KEY_MATERIAL,
  STORE_KINDS,
  captureLogger,
  countingStore,
  openTestStore,
  silentLogger,
  type TestStore,
} from '../../../test/support/auth-stores.js';

const PEPPER = 'test-pepper-0123456789abcdef';
const tiers = loadTierTable();
const { SCOPE_INFERENCE: INFERENCE, SCOPE_MANAGEMENT: MANAGEMENT } = Scope;

class Clock {
  constructor(public t = Date.UTC(2030, 0, 1)) {}
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

function makeService(store: AuthStore, opts: { clock?: Clock; logger?: Logger; pepper?: string } = {}): AuthService {
  return createAuthService({
    store,
    pepper: opts.pepper ?? PEPPER,
    tiers,
    rotationGraceSeconds: 86_400,
    logger: opts.logger ?? silentLogger(),
    now: (opts.clock ?? new Clock()).now,
  });
}

async function rejectsWith(promise: Promise<unknown>, kind: ErrorKind, code: string): Promise<Error> {
  let caught: Error | undefined;
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isAppError(err), `expected an AppError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    assert.equal(err.code, code, err.message);
    caught = err;
    return true;
  });
  assert.ok(caught);
  return caught;
}

const uniqueSlug = (base: string): string => `${base}-${randomBytes(4).toString('hex')}`;

interface Fixture {
  slug: string;
  id: string;
  keys: { full: string; inference: string; management: string; bound: string };
  keyIds: { full: string };
}

/** A project with endpoints chat, other, off (inactive) and keys of every shape. */
async function fixture(service: AuthService, base = 'acme'): Promise<Fixture> {
  const slug = uniqueSlug(base);
  const { project } = await service.createProject({ slug, name: `Project ${base}` });
  assert.ok(project);
  for (const ep of ['chat', 'other', 'off']) {
    await service.createEndpoint({ project: slug, slug: ep, tier: 'cpu_standard', model: 'smollm2-135m-instruct', hardwarePool: '', contextWindow: 2048 });
  }
  await service.setEndpointActive({ project: slug, endpoint: 'off', active: false });
  const key = async (scopes: Scope[], endpointSlug = '') =>
    service.createApiKey({ project: slug, name: 'k', scopes, endpointSlug, expireTime: undefined });
  const full = await key([INFERENCE, MANAGEMENT]);
  return {
    slug,
    id: project.id,
    keys: {
      full: full.secret,
      inference: (await key([INFERENCE])).secret,
      management: (await key([MANAGEMENT])).secret,
      bound: (await key([INFERENCE], 'chat')).secret,
    },
    keyIds: { full: full.apiKey?.id ?? '' },
  };
}

const req = (apiKey: string, project: string, endpoint = 'chat', requiredScope = INFERENCE): AuthenticateRequest => ({
  apiKey,
  project,
  endpoint,
  requiredScope,
});

for (const kind of STORE_KINDS) {
  describe(`AuthService (${kind})`, () => {
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

    it('seeds the demo project once and writes the key to a 0600 file', async () => {
      const logs = captureLogger();
      const service = makeService(db.store, { logger: logs.logger });
      const dir = mkdtempSync(path.join(tmpdir(), 'xero-seed-'));
      const keyFile = path.join(dir, 'nested', 'demo-api-key');
      try {
        const deps = { service, store: db.store, logger: logs.logger };
        assert.equal(await seedDemo(deps, keyFile), 'seeded');
        assert.equal(statSync(keyFile).mode & 0o777, 0o600);
        const key = readFileSync(keyFile, 'utf8').trim();
        const principal = (await service.authenticate(req(key, DEMO.project, DEMO.endpoint))).principal;
        assert.equal(principal?.endpoint?.tier, 'cpu_standard');
        assert.equal(principal?.endpoint?.hardwarePool, 'cpu');
        assert.equal(principal?.endpoint?.model, 'smollm2-135m-instruct');
        assert.equal(principal?.endpoint?.contextWindow, 2048);
        assert.match(principal?.project?.id ?? '', /^proj_/);
        await service.authenticate(req(key, 'demo', '', MANAGEMENT));

        rmSync(keyFile);
        assert.equal(await seedDemo(deps, keyFile), 'exists');
        assert.equal(existsSync(keyFile), false, 'nothing rotated, nothing written');
        assert.match(logs.text(), /demo key file is missing/);
        await service.authenticate(req(key, DEMO.project, DEMO.endpoint));
        assert.equal((await service.listApiKeys({ project: 'demo', pageSize: 0, after: '' })).apiKeys.length, 1);
        assert.deepEqual(logs.text().match(KEY_MATERIAL) ?? [], []);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
