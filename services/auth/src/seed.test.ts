/** The demo seed against both stores: seeded once, key in a 0600 file, never in the logs. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
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
