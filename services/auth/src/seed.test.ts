/** The demo seed against both stores: seeded once, key in a 0600 file, never in the logs. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EndpointKind } from '../../../gen/xerotier/auth/v1/auth_service.js';
import { DEMO, seedDemo } from './seed.js';
import { KEY_MATERIAL, STORE_KINDS, openTestStore, type TestStore } from '../../../test/support/auth-stores.js';
import { captureLogger } from '../../../test/helpers/log-capture.js';
import { MANAGEMENT, makeService, req } from '../../../test/support/auth-service-fixture.js';

for (const kind of STORE_KINDS) {
  describe(`Demo seed (${kind})`, () => {
    let db: TestStore;
    before(async () => {
      db = await openTestStore(kind);
    });
    after(async () => {
      await db?.cleanup();
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
        assert.equal(principal?.endpoint?.kind, EndpointKind.ENDPOINT_KIND_CHAT);
        const embeddings = (await service.authenticate(req(key, DEMO.project, DEMO.embeddingsEndpoint))).principal?.endpoint;
        assert.equal(embeddings?.kind, EndpointKind.ENDPOINT_KIND_EMBEDDINGS, 'the same key reaches the embeddings endpoint');
        assert.equal(embeddings?.model, 'smollm2-135m-instruct');
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

    it('adds the embeddings endpoint to a demo project seeded before it existed', async () => {
      const logs = captureLogger();
      // What an older seed left: the demo project with its chat endpoint only.
      const fresh = await openTestStore(kind);
      try {
        const older = makeService(fresh.store, { logger: logs.logger });
        await older.createProject({ slug: DEMO.project, name: DEMO.projectName });
        await older.createEndpoint({ project: DEMO.project, slug: DEMO.endpoint, tier: DEMO.tier, model: DEMO.model, hardwarePool: DEMO.hardwarePool, contextWindow: DEMO.contextWindow });
        const keyFile = path.join(mkdtempSync(path.join(tmpdir(), 'xero-seed-')), 'demo-api-key');
        assert.equal(await seedDemo({ service: older, store: fresh.store, logger: logs.logger }, keyFile), 'exists');
        const demo = (await fresh.store.findProject(DEMO.project))!;
        assert.equal((await fresh.store.findEndpoint(demo.id, DEMO.embeddingsEndpoint))?.kind, 'embeddings');
        assert.equal((await fresh.store.findEndpoint(demo.id, DEMO.endpoint))?.kind, 'chat');
        assert.equal(await seedDemo({ service: older, store: fresh.store, logger: logs.logger }, keyFile), 'exists', 'idempotent');
      } finally {
        await fresh.cleanup();
      }
    });
  });
}
