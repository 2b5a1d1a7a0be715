/** `xero join-keys` and `xero workers`, spawned as a real process against a started auth service. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { WorkerServiceDefinition } from '../../gen/xerotier/workers/v1/worker_service.js';
import { callOptions, createAppClient, createGrpcChannel } from '../../lib/grpc/client.js';
import { TEST_SERVICE_TOKEN, startTestAuth, type TestAuth } from './helpers.js';

const run = promisify(execFile);
const ROOT = path.join(import.meta.dirname, '..', '..');
const XERO = path.join(ROOT, 'bin', 'xero.ts');

describe('xero join-keys and workers', () => {
  let t: TestAuth;
  before(async () => {
    t = await startTestAuth('sqlite', { AUTH_SEED_DEMO: 'false' });
  });
  after(async () => {
    await t?.stop();
  });

  async function xero(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', XERO, ...args], {
        cwd: ROOT,
        env: { PATH: process.env['PATH'] ?? '', XERO_AUTH_ADDRESS: t.address, SERVICE_TOKEN: TEST_SERVICE_TOKEN },
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

  it('creates, lists and revokes join keys; lists and revokes the workers they enrolled', async () => {
    assert.equal((await xero(['projects', 'create', 'acme'])).code, 0);
    const created = await json(['join-keys', 'create', 'acme', '--name', 'rack', '--max-uses', '2', '--expires-in', '3600']);
    assert.match(created.key, /^xjk_[0-9A-Za-z]{43}$/);
    assert.equal(created.max_uses, 2);
    assert.ok(Math.abs(created.expires_at - (Date.now() / 1000 + 3600)) < 60);

    const workers = createAppClient(WorkerServiceDefinition, createGrpcChannel(t.address), { address: t.address, target: 'auth', serviceToken: TEST_SERVICE_TOKEN });
    const enrolled = await workers.enroll({ joinKey: created.key, name: 'box-1', model: 'm' }, callOptions('t'));

    const table = await xero(['join-keys', 'list', 'acme']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`${created.id}\\s+rack\\s+xjk_\\S+\\s+1/2\\s+\\S+\\s+active`));
    assert.ok(!table.stdout.includes(created.key), 'the secret is never listed');

    const listed = await json(['workers', 'list', 'acme']);
    assert.deepEqual(listed.map((w: { id: string; name: string; state: string }) => [w.id, w.name, w.state]), [[enrolled.worker?.id, 'box-1', 'enrolling']]);
    const revoked = await json(['workers', 'revoke', 'acme', enrolled.worker?.id ?? '']);
    assert.equal(revoked.state, 'revoked');
    assert.match((await xero(['workers', 'list', 'acme'])).stdout, /box-1\s+revoked/);

    const jk = await xero(['join-keys', 'revoke', 'acme', created.id]);
    assert.equal(jk.code, 0, jk.stderr);
    assert.match((await xero(['join-keys', 'list', 'acme'])).stdout, /revoked/);
    const unknown = await xero(['workers', 'revoke', 'acme', 'wrk_nope']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^xero: Worker not found\.\n$/);
  });
});
