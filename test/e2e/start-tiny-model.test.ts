/**
 * The generated tiny test model is a development convenience, never a silent production
 * fallback: a bare inference worker whose model cannot be had fails to start (LLAMA_FALLBACK_TINY
 * is off by default); only `npm start` turns the fallback on, and its banner says so (checked in
 * start-script.test.ts).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { freePort } from '../helpers/child-worker.js';
import { ENTRIES, root } from './start-harness.js';

describe('tiny model fallback', () => {
  it('is off for a bare inference worker: a missing model stops it instead of serving the test model', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'xero-tiny-'));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      INFERENCE_PORT: String(await freePort()),
      INFERENCE_ENGINE: 'llama-cpp',
      LLAMA_MODEL: path.join(dir, 'missing.gguf'),
      LLAMA_MODELS_DIR: path.join(dir, 'models'),
      LLAMA_ALLOW_DOWNLOAD: 'false',
      LLAMA_THREADS: '1',
    };
    delete env['LLAMA_FALLBACK_TINY'];
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, ENTRIES.inference)], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await Promise.race([
      new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c))),
      new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 120_000)),
    ]);
    if (code === 'timeout') child.kill('SIGKILL');
    assert.equal(code, 1, `the worker stops with an error:\n${out.slice(-2000)}`);
    assert.match(out, /engine failed to start/);
    assert.doesNotMatch(out, /tiny test model/);
  });
});
