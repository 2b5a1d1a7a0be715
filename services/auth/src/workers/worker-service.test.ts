/**
 * WorkerService on both stores: join keys (who may manage them, max uses under concurrency,
 * expiry, revocation), enrollment into the join key's own project, worker credentials (checked,
 * refreshed, expired, revoked with the worker or its join key, never an API key) and states.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WorkerState } from '../../../../gen/xerotier/workers/v1/worker_service.js';
import { isAppError } from '../../../../lib/errors/app-error.js';
import { STORE_KINDS, openTestStore, silentLogger, type TestStore } from '../../../../test/support/auth-stores.js';
import { Clock, INFERENCE, MANAGEMENT, PEPPER, fixture, makeService, rejectsWith, req, type Fixture } from '../../../../test/support/auth-service-fixture.js';
import type { AuthService } from '../auth-service.js';
import { OFFLINE_AFTER_MS, createWorkerService, type WorkerService } from './worker-service.js';

const TTL_MS = 60_000;

for (const kind of STORE_KINDS) {
  describe(`worker service (${kind})`, () => {
    let db: TestStore;
    let clock: Clock;
    let auth: AuthService;
    let workers: WorkerService;
    let acme: Fixture;
    let other: Fixture;
    const keyId = async (project: string, scopes: number[]) =>
      (await auth.createApiKey({ project, name: 'k', scopes, endpointSlug: '', expireTime: undefined })).apiKey?.id ?? '';

    before(async () => {
      db = await openTestStore(kind);
      clock = new Clock();
      auth = makeService(db.store, { clock });
      workers = createWorkerService({ store: db.store, pepper: PEPPER, credentialTtlMs: TTL_MS, logger: silentLogger(), now: clock.now });
      acme = await fixture(auth, 'acme');
      other = await fixture(auth, 'other');
    });
    after(async () => db.cleanup());

    it('join keys are managed by management keys of the project only; the secret is shown once', async () => {
      const manager = await keyId(acme.slug, [MANAGEMENT]);
      const created = await workers.createJoinKey({ project: acme.slug, name: 'rack', maxUses: 0, actorKeyId: manager });
      assert.match(created.secret, /^xjk_[0-9A-Za-z]{43}$/);
      assert.ok(created.joinKey && created.secret.startsWith(created.joinKey.prefix));
      const listed = await workers.listJoinKeys({ project: acme.slug, actorKeyId: manager });
      assert.ok(listed.joinKeys.some((k) => k.id === created.joinKey?.id));
      assert.ok(!JSON.stringify(listed).includes(created.secret), 'never listed with its secret');

      const inferenceOnly = await keyId(acme.slug, [INFERENCE]);
      await rejectsWith(workers.createJoinKey({ project: acme.slug, name: '', maxUses: 0, actorKeyId: inferenceOnly }), 'permission_denied', 'scope_insufficient');
      const otherManager = await keyId(other.slug, [MANAGEMENT]);
      await rejectsWith(workers.listJoinKeys({ project: acme.slug, actorKeyId: otherManager }), 'permission_denied', 'cross_project_access');
      await rejectsWith(
        workers.revokeJoinKey({ project: other.slug, joinKeyId: created.joinKey?.id ?? '', actorKeyId: otherManager }),
        'not_found',
        'join_key_not_found',
      );
    });

    it('a join key enrolls into its own project, at most max_uses times even when enrollments race', async () => {
      const { secret } = await workers.createJoinKey({ project: acme.slug, name: 'two', maxUses: 2 });
      const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => workers.enroll({ joinKey: secret, name: `w${i}`, model: 'm' })));
      const ok = results.filter((r) => r.status === 'fulfilled');
      assert.equal(ok.length, 2);
      for (const r of results) {
        if (r.status === 'rejected') assert.ok(isAppError(r.reason) && r.reason.code === 'invalid_join_key');
      }
      for (const r of ok) {
        assert.equal(r.value.worker?.projectId, acme.id);
        assert.equal(r.value.projectSlug, acme.slug);
        assert.equal(r.value.worker?.state, WorkerState.WORKER_STATE_ENROLLING);
      }
      const keys = await workers.listJoinKeys({ project: acme.slug });
      assert.equal(keys.joinKeys.find((k) => secret.startsWith(k.prefix))?.useCount, 2);
    });

    it('a worker credential works for the tunnel only, and stops with revocation or expiry', async () => {
      const { secret, joinKey } = await workers.createJoinKey({ project: acme.slug, name: 'c', maxUses: 0 });
      const { credential, worker } = await workers.enroll({ joinKey: secret, name: 'box', model: 'm' });
      assert.match(credential, /^xwc_/);
      const checked = await workers.checkWorker({ credential, state: WorkerState.WORKER_STATE_ONLINE, model: 'm2' });
      assert.equal(checked.worker?.state, WorkerState.WORKER_STATE_ONLINE);
      assert.equal(checked.worker?.model, 'm2');

      // Neither an API key nor a join key.
      await rejectsWith(auth.authenticate(req(credential, acme.slug)), 'unauthenticated', 'invalid_api_key');
      await rejectsWith(workers.enroll({ joinKey: credential, name: 'x', model: '' }), 'unauthenticated', 'invalid_join_key');
      await rejectsWith(workers.enroll({ joinKey: other.keys.full, name: 'x', model: '' }), 'unauthenticated', 'invalid_join_key');
      await rejectsWith(workers.checkWorker({ credential: secret, state: 0, model: '' }), 'unauthenticated', 'invalid_worker_credential');

      // Listing: online while heartbeats arrive, offline when they stop.
      clock.advance(OFFLINE_AFTER_MS + 1);
      const listed = await workers.listWorkers({ project: acme.slug });
      assert.equal(listed.workers.find((w) => w.id === worker?.id)?.state, WorkerState.WORKER_STATE_OFFLINE);

      // Refresh extends; expiry stops.
      clock.advance(TTL_MS / 2);
      const refreshed = await workers.refreshCredential({ credential });
      assert.equal(refreshed.credentialExpireTime?.getTime(), clock.now() + TTL_MS);
      clock.advance(TTL_MS);
      await rejectsWith(workers.checkWorker({ credential, state: 0, model: '' }), 'unauthenticated', 'invalid_worker_credential');

      // Revoking the join key stops its workers; revoking a worker stops it.
      const second = await workers.enroll({ joinKey: secret, name: 'box2', model: 'm' });
      await workers.checkWorker({ credential: second.credential, state: 0, model: '' });
      await workers.revokeJoinKey({ project: acme.slug, joinKeyId: joinKey?.id ?? '' });
      const err = await rejectsWith(workers.checkWorker({ credential: second.credential, state: 0, model: '' }), 'unauthenticated', 'invalid_worker_credential');
      assert.match(err.message, /join key has been revoked/);
      await rejectsWith(workers.enroll({ joinKey: secret, name: 'x', model: '' }), 'unauthenticated', 'invalid_join_key');

      const fresh = await workers.createJoinKey({ project: acme.slug, name: 'd', maxUses: 1 });
      const third = await workers.enroll({ joinKey: fresh.secret, name: 'box3', model: 'm' });
      await rejectsWith(
        workers.revokeWorker({ project: other.slug, workerId: third.worker?.id ?? '' }),
        'not_found',
        'worker_not_found',
      );
      const revoked = await workers.revokeWorker({ project: acme.slug, workerId: third.worker?.id ?? '' });
      assert.equal(revoked.worker?.state, WorkerState.WORKER_STATE_REVOKED);
      await rejectsWith(workers.checkWorker({ credential: third.credential, state: 0, model: '' }), 'unauthenticated', 'invalid_worker_credential');
    });

    it('refuses expired join keys and bad limits', async () => {
      const { secret } = await workers.createJoinKey({ project: acme.slug, name: 'e', maxUses: 0, expireTime: new Date(clock.now() + 1000) });
      clock.advance(1001);
      const err = await rejectsWith(workers.enroll({ joinKey: secret, name: 'x', model: '' }), 'unauthenticated', 'invalid_join_key');
      assert.match(err.message, /expired/);
      await rejectsWith(workers.createJoinKey({ project: acme.slug, name: '', maxUses: -1 }), 'invalid_request', 'invalid_request');
      await rejectsWith(
        workers.createJoinKey({ project: acme.slug, name: '', maxUses: 0, expireTime: new Date(clock.now() - 1) }),
        'invalid_request',
        'invalid_request',
      );
    });
  });
}
