import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { STORE_KINDS, openTestStore, type TestStore } from '../../../test/support/auth-stores.js';
import { fixture, makeService, rejectsWith, req } from '../../../test/support/auth-service-fixture.js';

for (const kind of STORE_KINDS) {
  describe(`SetEndpointModel (${kind})`, () => {
    let db: TestStore;
    before(async () => {
      db = await openTestStore(kind);
    });
    after(async () => {
      await db?.cleanup();
    });

    it('points an endpoint at another model id; authentication then names it', async () => {
      const service = makeService(db.store);
      const f = await fixture(service);
      const { endpoint } = await service.setEndpointModel({ project: f.slug, endpoint: 'chat', model: 'xerotier-tiny-successor' });
      assert.equal(endpoint?.model, 'xerotier-tiny-successor');
      assert.equal((await service.authenticate(req(f.keys.full, f.slug, 'chat'))).principal?.endpoint?.model, 'xerotier-tiny-successor');
      // Only that endpoint changed.
      assert.equal((await service.authenticate(req(f.keys.full, f.slug, 'other'))).principal?.endpoint?.model, 'smollm2-135m-instruct');
    });

    it('refuses a malformed model id (400) and an unknown endpoint or project (404)', async () => {
      const service = makeService(db.store);
      const f = await fixture(service);
      await rejectsWith(service.setEndpointModel({ project: f.slug, endpoint: 'chat', model: '' }), 'invalid_request', 'invalid_request');
      await rejectsWith(service.setEndpointModel({ project: f.slug, endpoint: 'chat', model: 'has space' }), 'invalid_request', 'invalid_request');
      await rejectsWith(service.setEndpointModel({ project: f.slug, endpoint: 'missing', model: 'm' }), 'not_found', 'endpoint_not_found');
      await rejectsWith(service.setEndpointModel({ project: 'no-such-project', endpoint: 'chat', model: 'm' }), 'not_found', 'project_not_found');
    });
  });
}
