/** `xero usage` spawned as a real process against the in-process platform's auth and ledger. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startPlatform, waitFor, type Platform } from '../helpers/platform.js';
import { sseRequest } from '../helpers/sse-client.js';
import { unthrottledTiers } from '../helpers/tiers.js';

const run = promisify(execFile);
const ROOT = path.join(import.meta.dirname, '..', '..');
const XERO = path.join(ROOT, 'bin', 'xero.ts');

describe('xero usage', () => {
  let platform: Platform;
  const usage: Array<{ prompt_tokens: number; completion_tokens: number }> = [];
  before(async () => {
    const tiers = unthrottledTiers();
    platform = await startPlatform({ gatewayEnv: { TIERS_FILE: tiers }, quotaEnv: { TIERS_FILE: tiers } });
    for (let i = 0; i < 3; i++) {
      const r = await sseRequest({
        port: platform.gateway.port,
        path: '/demo/chat/v1/chat/completions',
        key: platform.demoKey,
        body: { model: 'm', messages: [{ role: 'user', content: `question ${i}` }], max_tokens: 8 },
      });
      assert.equal(r.status, 200);
      usage.push((JSON.parse(r.body) as { usage: (typeof usage)[number] }).usage);
    }
    await waitFor(() => platform.gateway.usagePending() === 0, 5_000, 'usage flushed');
  });
  after(async () => {
    await platform?.stop();
  });

  async function xero(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', XERO, ...args], {
        cwd: ROOT,
        env: {
          PATH: process.env['PATH'] ?? '',
          XERO_AUTH_ADDRESS: `127.0.0.1:${platform.authPort}`,
          XERO_LEDGER_ADDRESS: `127.0.0.1:${platform.ledger.port}`,
        },
        timeout: 30_000,
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }

  it('sums the project usage by key, as JSON and as a table', async () => {
    const res = await xero(['--json', 'usage', 'demo', '--since', '1h', '--by', 'key']);
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout) as { group_by: string; data: Array<{ key: string; requests: number; prompt_tokens: number; completion_tokens: number }> };
    assert.equal(out.group_by, 'key');
    assert.equal(out.data.length, 1, 'one key sent everything');
    assert.match(out.data[0]!.key, /^key_/);
    assert.equal(out.data[0]!.requests, 3);
    assert.equal(out.data[0]!.prompt_tokens, usage.reduce((a, u) => a + u.prompt_tokens, 0));
    assert.equal(out.data[0]!.completion_tokens, usage.reduce((a, u) => a + u.completion_tokens, 0));

    const text = await xero(['usage', 'demo']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^day\s+requests/m);
    assert.match(text.stdout, /^total\s+3\s/m);
  });

  it('refuses a malformed --since and an unknown project with one line and exit 1', async () => {
    const bad = await xero(['usage', 'demo', '--since', 'yesterday']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--since/);
    const unknown = await xero(['usage', 'nope']);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr.trim(), 'xero: project nope not found');
  });
});
