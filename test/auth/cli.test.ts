/** bin/xero.ts spawned as a real process against a started auth service. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Scope } from '../../gen/xerotier/auth/v1/auth_service.js';
import { KEY_MATERIAL } from '../support/auth-stores.js';
import { TEST_SERVICE_TOKEN, startTestAuth, type TestAuth } from './helpers.js';

const run = promisify(execFile);
const ROOT = path.join(import.meta.dirname, '..', '..');
const XERO = path.join(ROOT, 'bin', 'xero.ts');

describe('xero CLI', () => {
  let t: TestAuth;
  before(async () => {
    t = await startTestAuth('sqlite', { AUTH_SEED_DEMO: 'false' });
  });
  after(async () => {
    await t?.stop();
  });

  async function xero(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', XERO, ...args], {
        cwd: ROOT,
        env: { PATH: process.env['PATH'] ?? '', XERO_AUTH_ADDRESS: t.address, SERVICE_TOKEN: TEST_SERVICE_TOKEN, ...env },
        timeout: 30_000,
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }
  const json = async (args: string[]): Promise<any> => {
    const res = await xero(['--json', ...args]);
    assert.equal(res.code, 0, res.stderr);
    return JSON.parse(res.stdout);
  };

  it('creates and lists projects and endpoints', async () => {
    const created = await xero(['projects', 'create', 'acme', '--name', 'Acme Inc']);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /created project acme \(proj_[0-9a-f]+\)/);
    const list = await json(['projects', 'list']);
    assert.deepEqual(list.map((p: { slug: string; name: string }) => [p.slug, p.name]), [['acme', 'Acme Inc']]);
    const ep = await json(['endpoints', 'create', 'acme', 'chat', '--tier', 'free', '--model', 'smollm2-135m-instruct', '--context-window', '2048']);
    assert.equal(ep.hardware_pool, 'cpu');
    assert.equal(ep.context_window, 2048);
    assert.equal(ep.kind, 'chat', 'the default kind');
    const emb = await json(['endpoints', 'create', 'acme', 'emb', '--tier', 'free', '--model', 'smollm2-135m-instruct', '--kind', 'embeddings']);
    assert.equal(emb.kind, 'embeddings');
    const refused = await xero(['--auth', t.address, 'endpoints', 'create', 'acme', 'x', '--tier', 'free', '--model', 'm', '--kind', 'images']);
    assert.notEqual(refused.code, 0);
    const table = await xero(['--auth', t.address, 'endpoints', 'list', 'acme']);
    assert.match(table.stdout, /\schat\s+chat\s+free\s+cpu\s+smollm2-135m-instruct\s+2048\s+yes/);
    assert.match(table.stdout, /\semb\s+embeddings\s+free\s+cpu\s+smollm2-135m-instruct\s+\d+\s+yes/);
    const moved = await json(['endpoints', 'set-model', 'acme', 'chat', 'xerotier-tiny-successor']);
    assert.equal(moved.model, 'xerotier-tiny-successor');
    const bad = await xero(['--auth', t.address, 'endpoints', 'set-model', 'acme', 'chat', 'no spaces']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /model/);
    await json(['endpoints', 'set-model', 'acme', 'chat', 'smollm2-135m-instruct']);
  });

  it('creates, lists, rotates and revokes keys', async () => {
    const created = await json(['keys', 'create', 'acme', '--name', 'ci', '--scopes', 'inference,management', '--expires-in', '3600']);
    assert.match(created.key, /^xero_acme_[A-Za-z0-9]{49}$/);
    assert.deepEqual(created.scopes, ['inference', 'management']);
    assert.ok(Math.abs(created.expires_at - (Date.now() / 1000 + 3600)) < 60);
    const auth = (apiKey: string) =>
      t.client.authenticate({ apiKey, project: 'acme', endpoint: 'chat', requiredScope: Scope.SCOPE_INFERENCE });
    await auth(created.key);

    const listed = await xero(['keys', 'list', 'acme']);
    assert.equal(listed.code, 0);
    assert.ok(listed.stdout.includes(created.id));
    assert.deepEqual(listed.stdout.match(KEY_MATERIAL) ?? [], [], 'lists never show full keys');

    const rotated = await json(['keys', 'rotate', 'acme', created.id, '--grace', '60']);
    assert.equal(rotated.previous_key.id, created.id);
    assert.ok(Math.abs(rotated.previous_key.grace_expires_at - (Date.now() / 1000 + 60)) < 30);
    await auth(rotated.key);
    await auth(created.key);

    const revoked = await xero(['keys', 'revoke', 'acme', rotated.id]);
    assert.equal(revoked.code, 0, revoked.stderr);
    await assert.rejects(auth(rotated.key), /revoked/);
  });

  it('prints one line and exits 1 on errors', async () => {
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['projects', 'create', 'Bad_Slug'], {}, /^xero: slug must be/],
      [['keys', 'revoke', 'acme', 'key_nope'], {}, /^xero: API key not found\.$/],
      [['keys', 'list', 'nope'], {}, /^xero: Project 'nope' not found\.$/],
      [['projects', 'list'], { SERVICE_TOKEN: 'wrong' }, /^xero: missing or invalid service credential$/],
      [['projects', 'list'], { XERO_AUTH_ADDRESS: '127.0.0.1:1' }, /^xero: auth service at 127\.0\.0\.1:1 is unavailable$/],
      [['keys', 'create', 'acme', '--scopes', 'admin'], {}, /unknown scope "admin"/],
      [['keys', 'create', 'acme', '--expires-in', '1000000000000000'], {}, /--expires-in must end no later than 9999-12-31T23:59:59Z/],
    ];
    for (const [args, env, pattern] of cases) {
      const res = await xero(args, env);
      assert.equal(res.code, 1, args.join(' '));
      assert.equal(res.stdout, '');
      assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
      assert.match(res.stderr.trim(), pattern);
    }
  });
});
