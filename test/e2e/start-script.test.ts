/**
 * `npm start` as a newcomer runs it (issue 2): four child processes, a printed base URL, demo key
 * and curl line that work, and a clean stop on Ctrl-C. The model is a missing local file with
 * downloads off, so the worker takes the documented fallback (the generated tiny model) at once.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { freePort } from '../helpers/child-worker.js';
import { rawRequest } from '../helpers/raw-request.js';

const root = path.join(import.meta.dirname, '..', '..');

describe('npm start', () => {
  it('starts the platform, prints a working curl line, and stops cleanly on SIGINT', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'xero-start-'));
    const [gateway, auth, quota, inference] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'scripts/start.ts')], {
      cwd: root,
      env: {
        ...process.env,
        GATEWAY_PORT: String(gateway),
        AUTH_PORT: String(auth),
        QUOTA_PORT: String(quota),
        INFERENCE_PORT: String(inference),
        AUTH_SQLITE_PATH: path.join(dir, 'auth.sqlite'),
        AUTH_DEMO_KEY_FILE: path.join(dir, 'demo-api-key'),
        LLAMA_MODEL: path.join(dir, 'missing.gguf'),
        LLAMA_MODELS_DIR: path.join(dir, 'models'),
        LLAMA_ALLOW_DOWNLOAD: 'false',
        LLAMA_THREADS: '1',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const until = Date.now() + 60_000;
      while (!out.includes('Ctrl-C stops everything')) {
        assert.ok(Date.now() < until && child.exitCode === null, `platform did not come up:\n${out.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(out, /serving the built-in tiny test model/, 'the fallback says so plainly');
      const key = /Demo API key:\s+(xero_\S+)/.exec(out)?.[1];
      assert.ok(key, 'the demo key is printed');
      const url = /curl (http:\/\/\S+\/chat\/completions)/.exec(out)?.[1];
      assert.equal(url, `http://127.0.0.1:${gateway}/demo/chat/v1/chat/completions`);
      const body = /-d '(\{.*\})'/.exec(out)?.[1];
      assert.ok(body);
      const res = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body,
      });
      assert.equal(res.status, 200, await res.clone().text());
      const json = (await res.json()) as { model: string; choices: Array<{ message: { content: string } }> };
      assert.equal(json.model, 'xerotier-tiny-successor');
      assert.ok(json.choices[0]!.message.content.length > 0);
      const dns = await rawRequest(gateway, 'chat.demo.api.localhost', '/v1/models', key, undefined, 'GET');
      assert.equal(dns.status, 200, dns.body);
    } finally {
      child.kill('SIGINT');
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 30_000))]);
      assert.equal(code, 0, `clean stop (got ${String(code)}):\n${out.slice(-2000)}`);
    }
    // Every port is free again: nothing was left behind.
    for (const port of [gateway, auth, quota, inference]) {
      const open = await fetch(`http://127.0.0.1:${port}/`).then(() => true, () => false);
      assert.equal(open, false, `port ${port} still served`);
    }
  });
});
