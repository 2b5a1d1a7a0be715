/**
 * The key admin RPCs called for an actor key (`actor_key_id`, what the management routes pass)
 * against both stores: the actor must be a working management key of the project, and no key
 * grants, sees or takes over more than the actor holds (scopes, endpoint binding, lifetime).
 * A key outside reach is answered exactly like an unknown key.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Scope, type ApiKey } from '../../../gen/xerotier/auth/v1/auth_service.js';
import { isAppError } from '../../../lib/errors/app-error.js';
import type { AuthService } from './auth-service.js';
import { STORE_KINDS, openTestStore, type TestStore } from '../../../test/support/auth-stores.js';
import { Clock, INFERENCE, MANAGEMENT, makeService, rejectsWith, req, uniqueSlug } from '../../../test/support/auth-service-fixture.js';

const HOUR = 3_600_000;
const BOTH = [INFERENCE, MANAGEMENT];

interface KeySpec {
  scopes: Scope[];
  endpoint?: string;
  expiresInMs?: number;
}

/** Keys of every shape, created by the operator, by name. */
const SPECS = {
  full: { scopes: BOTH },
  mgmt: { scopes: [MANAGEMENT] },
  inf: { scopes: [INFERENCE] },
  chatFull: { scopes: BOTH, endpoint: 'chat' },
  chatInf: { scopes: [INFERENCE], endpoint: 'chat' },
  otherInf: { scopes: [INFERENCE], endpoint: 'other' },
  full1h: { scopes: BOTH, expiresInMs: HOUR },
  chatInf30m: { scopes: [INFERENCE], endpoint: 'chat', expiresInMs: HOUR / 2 },
  inf2h: { scopes: [INFERENCE], expiresInMs: 2 * HOUR },
} satisfies Record<string, KeySpec>;
type KeyName = keyof typeof SPECS;

/** Who reaches whom, written out by hand from the rule. */
const REACH: Partial<Record<KeyName, KeyName[]>> = {
  full: ['full', 'mgmt', 'inf', 'chatFull', 'chatInf', 'otherInf', 'full1h', 'chatInf30m', 'inf2h'],
  mgmt: ['mgmt'],
  chatFull: ['chatFull', 'chatInf', 'chatInf30m'],
  full1h: ['full1h', 'chatInf30m'],
};

interface Project {
  slug: string;
  ids: Record<KeyName, string>;
  secrets: Record<KeyName, string>;
  nameOf(id: string): KeyName | undefined;
}

async function project(service: AuthService, clock: Clock): Promise<Project> {
  const slug = uniqueSlug('reach');
  await service.createProject({ slug, name: '' });
  for (const ep of ['chat', 'other']) {
    await service.createEndpoint({ project: slug, slug: ep, tier: 'cpu_standard', model: 'm', hardwarePool: '', contextWindow: 0 });
  }
  const ids = {} as Record<KeyName, string>;
  const secrets = {} as Record<KeyName, string>;
  for (const [name, spec] of Object.entries(SPECS) as Array<[KeyName, KeySpec]>) {
    const created = await service.createApiKey({
      project: slug,
      name,
      scopes: spec.scopes,
      endpointSlug: spec.endpoint ?? '',
      expireTime: spec.expiresInMs === undefined ? undefined : new Date(clock.t + spec.expiresInMs),
    });
    ids[name] = created.apiKey?.id ?? '';
    secrets[name] = created.secret;
  }
  const names = new Map(Object.entries(ids).map(([name, id]) => [id, name as KeyName]));
  return { slug, ids, secrets, nameOf: (id) => names.get(id) };
}

/** The error an unknown key id gets; out-of-reach keys must get exactly this. */
async function errorOf(promise: Promise<unknown>): Promise<{ kind: string; code: string; param: string | undefined; message: string }> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isAppError(err), String(err));
    return { kind: err.kind, code: err.code, param: err.param, message: err.message };
  }
  assert.fail('expected a refusal');
}

for (const kind of STORE_KINDS) {
  describe(`Key admin for an actor key (${kind})`, () => {
    let db: TestStore;
    before(async () => {
      db = await openTestStore(kind);
    });
    after(async () => {
      await db?.cleanup();
    });

    it('refuses an actor that is unknown, empty, revoked, expired, past its grace, of another project or without management', async () => {
      const clock = new Clock();
      const service = makeService(db.store, { clock });
      const p = await project(service, clock);
      const other = await project(service, clock);
      const rotated = await service.rotateApiKey({ project: p.slug, keyId: p.ids.full1h, graceSeconds: 60 });
      await service.revokeApiKey({ project: p.slug, keyId: p.ids.mgmt });
      clock.advance(HOUR); // full1h: its grace (60 s) has ended; rotated replacement expires now too.
      const calls = (actorKeyId: string): Array<() => Promise<unknown>> => [
        () => service.createApiKey({ project: p.slug, name: 'x', scopes: [], endpointSlug: '', expireTime: undefined, actorKeyId }),
        () => service.listApiKeys({ project: p.slug, pageSize: 0, after: '', actorKeyId }),
        () => service.getApiKey({ project: p.slug, keyId: p.ids.inf, actorKeyId }),
        () => service.revokeApiKey({ project: p.slug, keyId: p.ids.inf, actorKeyId }),
        () => service.rotateApiKey({ project: p.slug, keyId: p.ids.inf, graceSeconds: 0, actorKeyId }),
      ];
      const refusals: Array<[string, 'unauthenticated' | 'permission_denied', string]> = [
        ['key_000000000000000000000000', 'unauthenticated', 'invalid_api_key'],
        ['', 'unauthenticated', 'invalid_api_key'],
        [p.ids.mgmt, 'unauthenticated', 'invalid_api_key'],
        [rotated.apiKey?.id ?? '', 'unauthenticated', 'invalid_api_key'],
        [p.ids.full1h, 'unauthenticated', 'invalid_api_key'],
        [other.ids.full, 'permission_denied', 'cross_project_access'],
        [p.ids.inf, 'permission_denied', 'scope_insufficient'],
        [p.ids.chatInf, 'permission_denied', 'scope_insufficient'],
      ];
      for (const [actor, errKind, code] of refusals) {
        for (const call of calls(actor)) await rejectsWith(call(), errKind, code);
      }
      // Nothing was changed by the refused calls.
      const inf = await service.getApiKey({ project: p.slug, keyId: p.ids.inf });
      assert.equal(inf.apiKey?.revoked, false);
      assert.equal(inf.apiKey?.graceExpireTime, undefined);
    });

    it('an endpoint-bound management key cannot mint an unbound key or one for another endpoint', async () => {
      const clock = new Clock();
      const service = makeService(db.store, { clock });
      const p = await project(service, clock);
      const create = (endpointSlug: string, scopes: Scope[] = BOTH) =>
        service.createApiKey({ project: p.slug, name: 'minted', scopes, endpointSlug, expireTime: undefined, actorKeyId: p.ids.chatFull });

      const byDefault = await create('');
      assert.equal(byDefault.apiKey?.endpointSlug, 'chat', "no endpoint asked = the actor's binding");
      assert.deepEqual(byDefault.apiKey?.scopes, BOTH);
      await service.authenticate(req(byDefault.secret, p.slug, 'chat'));
      await rejectsWith(service.authenticate(req(byDefault.secret, p.slug, 'other')), 'permission_denied', 'endpoint_mismatch');
      assert.equal((await create('chat', [INFERENCE])).apiKey?.endpointSlug, 'chat');

      for (const endpoint of ['other', 'missing']) {
        const err = await rejectsWith(create(endpoint), 'permission_denied', 'endpoint_binding_exceeds_caller');
        assert.equal(isAppError(err) ? err.param : undefined, 'endpoint');
        assert.doesNotMatch(err.message, /not found/, 'whether the endpoint exists is not revealed');
      }
      // An unbound actor binds anywhere in its project, or nowhere.
      const unbound = (endpointSlug: string) =>
        service.createApiKey({ project: p.slug, name: 'x', scopes: [], endpointSlug, expireTime: undefined, actorKeyId: p.ids.full });
      assert.equal((await unbound('other')).apiKey?.endpointSlug, 'other');
      assert.equal((await unbound('')).apiKey?.endpointSlug, '');
      await rejectsWith(unbound('missing'), 'not_found', 'endpoint_not_found');
    });

    it('a created key holds at most the actor\'s scopes; none asked = exactly the actor\'s', async () => {
      const clock = new Clock();
      const service = makeService(db.store, { clock });
      const p = await project(service, clock);
      const create = (actorKeyId: string, scopes: Scope[]) =>
        service.createApiKey({ project: p.slug, name: 'x', scopes, endpointSlug: '', expireTime: undefined, actorKeyId });

      for (const scopes of [[INFERENCE], BOTH]) {
        const err = await rejectsWith(create(p.ids.mgmt, scopes), 'permission_denied', 'key_scope_exceeds_caller');
        assert.equal(isAppError(err) ? err.param : undefined, 'scopes');
      }
      assert.deepEqual((await create(p.ids.mgmt, [])).apiKey?.scopes, [MANAGEMENT]);
      assert.deepEqual((await create(p.ids.mgmt, [MANAGEMENT])).apiKey?.scopes, [MANAGEMENT]);
      assert.deepEqual((await create(p.ids.full, [])).apiKey?.scopes, BOTH);
      assert.deepEqual((await create(p.ids.full, [INFERENCE])).apiKey?.scopes, [INFERENCE]);
      // The operator's default is unchanged: inference only.
      const operator = await service.createApiKey({ project: p.slug, name: 'x', scopes: [], endpointSlug: '', expireTime: undefined });
      assert.deepEqual(operator.apiKey?.scopes, [INFERENCE]);
    });

    it('a created key never outlives the actor, not even one in its rotation grace period', async () => {
      const clock = new Clock();
      const service = makeService(db.store, { clock });
      const p = await project(service, clock);
      const create = (actorKeyId: string, expireTime: Date | undefined) =>
        service.createApiKey({ project: p.slug, name: 'x', scopes: [], endpointSlug: '', expireTime, actorKeyId });

      assert.equal((await create(p.ids.full1h, undefined)).apiKey?.expireTime?.getTime(), clock.t + HOUR);
      assert.equal((await create(p.ids.full1h, new Date(clock.t + HOUR / 2))).apiKey?.expireTime?.getTime(), clock.t + HOUR / 2);
      const err = await rejectsWith(create(p.ids.full1h, new Date(clock.t + HOUR + 1)), 'permission_denied', 'key_expiry_exceeds_caller');
      assert.equal(isAppError(err) ? err.param : undefined, 'expires_at');
      assert.equal((await create(p.ids.full, undefined)).apiKey?.expireTime, undefined);

      // A leaked key is rotated; during the grace period its holder mints a key: it dies with the grace.
      await service.rotateApiKey({ project: p.slug, keyId: p.ids.full, graceSeconds: 60 });
      const minted = await create(p.ids.full, undefined);
      assert.equal(minted.apiKey?.expireTime?.getTime(), clock.t + 60_000);
      await service.authenticate(req(minted.secret, p.slug));
      clock.advance(60_000);
      await rejectsWith(service.authenticate(req(minted.secret, p.slug)), 'unauthenticated', 'invalid_api_key');
    });

    it('list, get, rotate and revoke reach only keys within the actor\'s scopes, binding and lifetime', async () => {
      const clock = new Clock();
      const service = makeService(db.store, { clock });
      const p = await project(service, clock);
      const unknown = 'key_000000000000000000000000';
      const asUnknown = {
        get: await errorOf(service.getApiKey({ project: p.slug, keyId: unknown })),
        revoke: await errorOf(service.revokeApiKey({ project: p.slug, keyId: unknown })),
        rotate: await errorOf(service.rotateApiKey({ project: p.slug, keyId: unknown, graceSeconds: 0 })),
        after: await errorOf(service.listApiKeys({ project: p.slug, pageSize: 0, after: unknown })),
      };
      assert.equal(asUnknown.get.code, 'api_key_not_found');

      for (const [actor, reachable] of Object.entries(REACH) as Array<[KeyName, KeyName[]]>) {
        const actorKeyId = p.ids[actor];
        const listed = await service.listApiKeys({ project: p.slug, pageSize: 100, after: '', actorKeyId });
        assert.deepEqual(listed.apiKeys.map((k) => p.nameOf(k.id)).sort(), [...reachable].sort(), `list for ${actor}`);
        for (const name of Object.keys(SPECS) as KeyName[]) {
          const keyId = p.ids[name];
          if (reachable.includes(name)) {
            assert.equal((await service.getApiKey({ project: p.slug, keyId, actorKeyId })).apiKey?.id, keyId);
            continue;
          }
          const what = `${actor} → ${name}`;
          assert.deepEqual(await errorOf(service.getApiKey({ project: p.slug, keyId, actorKeyId })), asUnknown.get, what);
          assert.deepEqual(await errorOf(service.revokeApiKey({ project: p.slug, keyId, actorKeyId })), asUnknown.revoke, what);
          assert.deepEqual(await errorOf(service.rotateApiKey({ project: p.slug, keyId, graceSeconds: 0, actorKeyId })), asUnknown.rotate, what);
          assert.deepEqual(await errorOf(service.listApiKeys({ project: p.slug, pageSize: 0, after: keyId, actorKeyId })), asUnknown.after, what);
        }
      }
      // The refused revocations and rotations changed nothing.
      const all = await service.listApiKeys({ project: p.slug, pageSize: 100, after: '' });
      assert.equal(all.apiKeys.length, Object.keys(SPECS).length);
      assert.ok(all.apiKeys.every((k: ApiKey) => !k.revoked && k.graceExpireTime === undefined));
    });

    it('an endpoint-bound actor pages through its keys and rotates and revokes them', async () => {
      const clock = new Clock();
      const service = makeService(db.store, { clock });
      const p = await project(service, clock);
      const actorKeyId = p.ids.chatFull;
      const seen: string[] = [];
      let after = '';
      for (let page = 0; page < 5; page++) {
        const res = await service.listApiKeys({ project: p.slug, pageSize: 1, after, actorKeyId });
        seen.push(...res.apiKeys.map((k) => k.id));
        if (!res.hasMore) break;
        after = res.apiKeys.at(-1)?.id ?? '';
      }
      // Same keys, in the same order as the operator's listing (creation time, then id).
      const bound = new Set([p.ids.chatFull, p.ids.chatInf, p.ids.chatInf30m]);
      const everything = await service.listApiKeys({ project: p.slug, pageSize: 100, after: '' });
      assert.deepEqual(seen, everything.apiKeys.map((k) => k.id).filter((id) => bound.has(id)));
      assert.equal(seen.length, 3);

      const rotated = await service.rotateApiKey({ project: p.slug, keyId: p.ids.chatInf, graceSeconds: 60, actorKeyId });
      assert.equal(rotated.apiKey?.endpointSlug, 'chat');
      assert.deepEqual(rotated.apiKey?.scopes, [INFERENCE]);
      await service.authenticate(req(rotated.secret, p.slug, 'chat'));
      const revoked = await service.revokeApiKey({ project: p.slug, keyId: rotated.apiKey?.id ?? '', actorKeyId });
      assert.equal(revoked.apiKey?.revoked, true);
      await rejectsWith(service.authenticate(req(rotated.secret, p.slug, 'chat')), 'unauthenticated', 'invalid_api_key');
    });
  });
}
