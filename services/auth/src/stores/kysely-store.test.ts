import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Kysely } from 'kysely';
import { Migrator } from 'kysely/migration';
import { openDatabase, type StoreLocation } from '../../../../lib/db/kysely.js';
import type { AuthDatabase } from './database.js';
import { openAuthStore } from './kysely-store.js';
import { migrateToLatest, migrations } from './migrations.js';
import { toEndpoint } from './project-queries.js';
import { UniqueViolationError, type NewApiKeyRow } from './store.js';
import { captureLogger } from '../../../../test/helpers/log-capture.js';
import { STORE_KINDS, createPgTestSchema, openTestStore, silentLogger } from '../../../../test/support/auth-stores.js';

const key = (id: string, projectId: string, hash: string, createdAt = 1): NewApiKeyRow => ({
  id,
  projectId,
  name: id,
  prefix: 'xero_p_abcdef',
  keyHash: hash,
  scopes: ['inference'],
  endpointId: null,
  expiresAt: null,
  rotatedFromKeyId: null,
  createdAt,
});

describe('SQLite store file', () => {
  it('creates the file and its directory on first start, and migrates only once', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'xero-store-'));
    const file = path.join(dir, 'a', 'b', 'auth.sqlite');
    try {
      const logs = captureLogger();
      const first = await openAuthStore({ dialect: 'sqlite', path: file }, logs.logger);
      await first.insertProject({ id: 'proj_1', slug: 'one', name: 'One', createdAt: 1 });
      await first.close();
      assert.ok(existsSync(file));
      const second = await openAuthStore({ dialect: 'sqlite', path: file }, logs.logger);
      assert.equal((await second.findProject('one'))?.id, 'proj_1');
      await second.close();
      const migrated = logs.lines.filter((l) => l.includes('auth database migrated'));
      assert.equal(migrated.length, 1, 'second start applies nothing');
      assert.ok(migrated[0]?.includes(Object.keys(migrations)[0] ?? '?'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('PostgreSQL store schema', () => {
  it('migrates each schema on its own even when another schema already has the tables', async () => {
    const a = await createPgTestSchema();
    const b = await createPgTestSchema();
    try {
      const logger = silentLogger();
      const storeA = await openAuthStore({ dialect: 'postgres', url: a.url, schema: a.schema }, logger);
      const storeB = await openAuthStore({ dialect: 'postgres', url: b.url, schema: b.schema }, logger);
      await storeA.insertProject({ id: 'proj_a', slug: 'same', name: 'A', createdAt: 1 });
      await storeB.insertProject({ id: 'proj_b', slug: 'same', name: 'B', createdAt: 1 });
      assert.equal((await storeA.findProject('same'))?.id, 'proj_a');
      assert.equal((await storeB.findProject('same'))?.id, 'proj_b');
      await storeA.close();
      await storeB.close();
      // Reopening applies nothing and sees the data.
      const logs = captureLogger();
      const again = await openAuthStore({ dialect: 'postgres', url: a.url, schema: a.schema }, logs.logger);
      assert.equal((await again.findProject('proj_a'))?.slug, 'same');
      await again.close();
      assert.equal(logs.lines.filter((l) => l.includes('auth database migrated')).length, 0);
    } finally {
      await a.drop();
      await b.drop();
    }
  });

  it('fails loudly (not skipped) when the server is unreachable', async () => {
    await assert.rejects(
      openAuthStore({ dialect: 'postgres', url: 'postgres://postgres@127.0.0.1:1/none' }, silentLogger()),
    );
  });
});

for (const kind of STORE_KINDS) {
  describe(`KyselyStore (${kind})`, () => {
    it('maps unique violations, keeps timestamps exact and rotates atomically', async () => {
      const db = await openTestStore(kind);
      try {
        const { store } = db;
        const t = Date.UTC(2031, 5, 6, 7, 8, 9, 123);
        await store.insertProject({ id: 'proj_x', slug: 'x', name: 'X', createdAt: t });
        await assert.rejects(store.insertProject({ id: 'proj_y', slug: 'x', name: 'Y', createdAt: t }), UniqueViolationError);
        assert.equal((await store.findProject('x'))?.createdAt, t);
        assert.equal(await store.findProject('X'), undefined, 'slugs are case-sensitive');
        await store.insertEndpoint({
          id: 'ep_1',
          projectId: 'proj_x',
          slug: 'chat',
          tier: 'free',
          model: 'm',
          hardwarePool: 'cpu',
          contextWindow: 8,
          active: true,
          kind: 'chat',
          createdAt: t,
        });
        await assert.rejects(
          store.insertEndpoint({ id: 'ep_2', projectId: 'proj_x', slug: 'chat', tier: 'free', model: 'm', hardwarePool: 'cpu', contextWindow: 8, active: true, kind: 'chat', createdAt: t }),
          UniqueViolationError,
        );
        await store.insertEndpoint({ id: 'ep_3', projectId: 'proj_x', slug: 'emb', tier: 'free', model: 'm', hardwarePool: 'cpu', contextWindow: 8, active: true, kind: 'embeddings', createdAt: t });
        assert.equal((await store.findEndpoint('proj_x', 'emb'))?.kind, 'embeddings');
        assert.equal((await store.findEndpoint('proj_x', 'chat'))?.kind, 'chat');
        assert.equal((await store.findKeyForAuth('nothing', 'emb')), undefined);
        await store.insertApiKey({ ...key('key_1', 'proj_x', 'aa'.repeat(32), t), expiresAt: t + 5, endpointId: 'ep_1' });
        await assert.rejects(store.insertApiKey(key('key_2', 'proj_x', 'aa'.repeat(32))), UniqueViolationError);

        const lookup = await store.findKeyForAuth('aa'.repeat(32), 'chat');
        assert.equal(lookup?.key.expiresAt, t + 5);
        assert.equal(lookup?.endpoint?.kind, 'chat');
        assert.equal((await store.findKeyForAuth('aa'.repeat(32), 'emb'))?.endpoint?.kind, 'embeddings');
        assert.equal(lookup?.key.endpointSlug, 'chat');
        assert.equal(lookup?.endpoint?.id, 'ep_1');
        assert.equal(lookup?.endpoint?.active, true);
        assert.equal(lookup?.project.slug, 'x');
        assert.equal((await store.findKeyForAuth('aa'.repeat(32), ''))?.endpoint, undefined);
        assert.equal(await store.findKeyForAuth('bb'.repeat(32), ''), undefined);

        // Two concurrent rotations of one key: exactly one wins, the loser changes nothing.
        const results = await Promise.all([
          store.rotateApiKey('proj_x', 'key_1', t + 1000, key('key_r1', 'proj_x', 'c1'.repeat(32))),
          store.rotateApiKey('proj_x', 'key_1', t + 2000, key('key_r2', 'proj_x', 'c2'.repeat(32))),
        ]);
        assert.deepEqual(results.filter(Boolean).length, 1);
        const winners = [await store.getApiKey('proj_x', 'key_r1'), await store.getApiKey('proj_x', 'key_r2')].filter(Boolean);
        assert.equal(winners.length, 1);
        // A failed insert inside the rotation rolls back the grace update.
        await store.insertApiKey(key('key_3', 'proj_x', 'dd'.repeat(32)));
        await assert.rejects(store.rotateApiKey('proj_x', 'key_3', t, key('key_4', 'proj_x', 'aa'.repeat(32))), UniqueViolationError);
        assert.equal((await store.getApiKey('proj_x', 'key_3'))?.graceExpiresAt, null);

        assert.equal((await store.revokeApiKey('proj_x', 'key_3', t + 7))?.revokedAt, t + 7);
        assert.equal((await store.revokeApiKey('proj_x', 'key_3', t + 9))?.revokedAt, t + 7, 'first revocation time stays');
        assert.equal(await store.revokeApiKey('proj_other', 'key_3', t), undefined);
      } finally {
        await db.cleanup();
      }
    });

    it('migration 0003 gives endpoints created before kinds existed the kind chat', async () => {
      const pgSchema = kind === 'postgres' ? await createPgTestSchema() : undefined;
      const location: StoreLocation = pgSchema
        ? { dialect: 'postgres', url: pgSchema.url, schema: pgSchema.schema, poolSize: 2 }
        : { dialect: 'sqlite', path: ':memory:' };
      const raw = openDatabase<unknown>(location, silentLogger());
      try {
        const first = migrations['0001_projects_endpoints_api_keys']!;
        const old = new Migrator({
          db: raw,
          provider: { getMigrations: () => Promise.resolve({ '0001_projects_endpoints_api_keys': first }) },
          ...(pgSchema ? { migrationTableSchema: pgSchema.schema } : {}),
        });
        assert.equal((await old.migrateToLatest()).error, undefined);
        const db = raw as Kysely<AuthDatabase>;
        await db.insertInto('projects').values({ id: 'proj_o', slug: 'old', name: 'Old', created_at: 1 }).execute();
        // A row as version 0001 wrote it: no kind column yet.
        const row = { id: 'ep_o', project_id: 'proj_o', slug: 'chat', tier: 'free', model: 'm', hardware_pool: 'cpu', context_window: 8, active: 1, created_at: 1 };
        await (raw as Kysely<{ endpoints: typeof row }>).insertInto('endpoints').values(row).execute();
        assert.deepEqual(await migrateToLatest(raw, pgSchema?.schema), ['0002_join_keys_self_hosted_workers', '0003_endpoint_kind']);
        const migrated = await db.selectFrom('endpoints').selectAll().where('id', '=', 'ep_o').executeTakeFirstOrThrow();
        assert.equal(migrated.kind, 'chat');
        assert.equal(toEndpoint(migrated).kind, 'chat');
      } finally {
        await raw.destroy();
        await pgSchema?.drop();
      }
    });
  });
}
