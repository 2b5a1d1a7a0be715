/**
 * `xero` is a real command of the checkout: package.json's "bin" points at bin/xero.js, an
 * executable launcher that runs the TypeScript CLI through tsx. `--offline` keeps npx from ever
 * asking the registry: the command must resolve from this package alone.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { root } from './start-harness.js';

const run = promisify(execFile);

describe('xero command', () => {
  it('package.json declares an executable bin', () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { bin?: Record<string, string> };
    const bin = pkg.bin?.['xero'];
    assert.ok(bin, 'a "xero" bin entry');
    accessSync(path.join(root, bin), constants.X_OK);
    assert.match(readFileSync(path.join(root, bin), 'utf8'), /^#!\/usr\/bin\/env node\n/);
  });

  it('`npx xero --help` exits 0 and lists the commands', async () => {
    const { stdout } = await run('npx', ['--offline', 'xero', '--help'], { cwd: root, timeout: 120_000 });
    assert.match(stdout, /^Usage: xero /m);
    for (const command of ['projects', 'endpoints', 'keys']) assert.match(stdout, new RegExp(`^\\s+${command}\\s`, 'm'));
    const keys = await run('npx', ['--offline', 'xero', 'keys', '--help'], { cwd: root, timeout: 120_000 });
    for (const command of ['create', 'list', 'revoke', 'rotate']) assert.match(keys.stdout, new RegExp(`^\\s+${command}\\b`, 'm'));
  });

  it('a failing command exits 1 with one line on stderr', async () => {
    await assert.rejects(
      run('npx', ['--offline', 'xero', '--auth', '127.0.0.1:1', 'projects', 'list'], { cwd: root, timeout: 120_000 }),
      (err: { code?: number; stderr?: string }) => {
        assert.equal(err.code, 1);
        assert.match(err.stderr ?? '', /^xero: .+\n$/);
        return true;
      },
    );
  });
});
