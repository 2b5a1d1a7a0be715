/**
 * `npm start` as a newcomer runs it: four child processes, a printed base URL and a curl line
 * that works when pasted into a shell (it reads the demo key from its file: the key itself never
 * appears in the output, which is the log stream), Prometheus metrics on every process at the
 * printed addresses, a plain warning that the tiny test model is being served (the model is a
 * missing local file with downloads off), and a clean stop on Ctrl-C.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { sampleValue } from '../helpers/exposition.js';
import { rawRequest } from '../helpers/raw-request.js';
import { root, startScript } from './start-harness.js';

const run = promisify(execFile);

describe('npm start', () => {
  it('starts the platform, prints a working curl line without the key, serves metrics, and stops cleanly on Ctrl-C', { timeout: 300_000 }, async () => {
    const platform = await startScript();
    try {
      const out = platform.output();
      const key = platform.key();
      assert.match(out, /serving the built-in tiny test model/, 'the worker says so plainly');
      assert.match(out, /Model:\s+xerotier-tiny-successor, the built-in TINY TEST MODEL/, 'and so does the banner');
      assert.ok(!out.includes(key), 'the demo key is not printed');
      assert.match(out, new RegExp(`Demo API key:\\s+in ${platform.keyFile}`));
      // Every process runs its compiled JavaScript (dist/), no TypeScript loader on the request path.
      for (const name of ['gateway', 'auth', 'quota', 'inference', 'ledger'] as const) {
        assert.ok(platform.childPid(name) !== undefined, `${name} runs as node dist/...js`);
      }

      // The curl line exactly as printed, run by a shell from the repository root.
      const curl = /^ {2}(curl .*\\\n\s+-d '.*')$/m.exec(out)?.[1];
      assert.ok(curl, `a curl line is printed:\n${out.slice(-1500)}`);
      assert.match(curl, /-H "Authorization: Bearer \$\(cat [^)]+\)"/);
      const pasted = await run('sh', ['-c', `${curl} --silent --show-error`], { cwd: root });
      const json = JSON.parse(pasted.stdout) as { model: string; choices: Array<{ message: { content: string } }> };
      assert.equal(json.model, 'xerotier-tiny-successor');
      assert.ok(json.choices[0]!.message.content.length > 0);
      const dns = await rawRequest(platform.ports.gateway, 'chat.demo.api.localhost', '/v1/models', key, undefined, 'GET');
      assert.equal(dns.status, 200, dns.body);

      // Metrics at the printed addresses, reflecting the request just made.
      const printed = /Metrics \(Prometheus\):\s+(.*)$/m.exec(out)?.[1] ?? '';
      const urls = Object.fromEntries([...printed.matchAll(/([\w-]+) (http:\/\/\S+\/metrics)/g)].map((m) => [m[1]!, m[2]!]));
      assert.deepEqual(urls, {
        gateway: `http://127.0.0.1:${platform.metricsPorts.gateway}/metrics`,
        auth: `http://127.0.0.1:${platform.metricsPorts.auth}/metrics`,
        quota: `http://127.0.0.1:${platform.metricsPorts.quota}/metrics`,
        'inference-cpu': `http://127.0.0.1:${platform.metricsPorts.inference}/metrics`,
        ledger: `http://127.0.0.1:${platform.metricsPorts.ledger}/metrics`,
      });
      const scrape = async (url: string): Promise<string> => {
        const res = await fetch(url);
        assert.equal(res.status, 200, url);
        return res.text();
      };
      const route = '/:project/:endpoint/v1/chat/completions';
      assert.equal(sampleValue(await scrape(urls['gateway']!), 'http_requests_total', { route, status: '200' }), 1);
      assert.equal(sampleValue(await scrape(urls['inference-cpu']!), 'time_to_first_token_seconds_count', { pool: 'cpu' }), 1);
      assert.equal(sampleValue(await scrape(urls['quota']!), 'quota_decisions_total', { decision: 'allow', tier: 'cpu_standard' }), 1);
      const authenticated = sampleValue(await scrape(urls['auth']!), 'grpc_server_handled_total', {
        method: '/xerotier.auth.v1.AuthService/Authenticate',
        code: 'OK',
      });
      assert.ok((authenticated ?? 0) >= 1);

      // After the counts above: the embeddings curl line, on the seeded `embeddings` endpoint with the same key.
      const embeddingsCurl = [...out.matchAll(/^ {2}(curl .*\\\n\s+-d '.*')$/gm)].map((m) => m[1]!).find((c) => c.includes('/demo/embeddings/v1/embeddings'));
      assert.ok(embeddingsCurl, 'an embeddings curl line is printed');
      const embedded = JSON.parse((await run('sh', ['-c', `${embeddingsCurl} --silent --show-error`], { cwd: root })).stdout) as {
        object: string;
        data: Array<{ embedding: number[] }>;
      };
      assert.equal(embedded.object, 'list');
      assert.equal(embedded.data.length, 2);
      assert.ok(embedded.data.every((d) => d.embedding.length > 0));
    } finally {
      const code = await platform.interrupt();
      platform.cleanup();
      assert.equal(code, 0, `clean stop:\n${platform.output().slice(-2000)}`);
    }
    // Every port is free again: nothing was left behind.
    for (const port of [...Object.values(platform.ports), ...Object.values(platform.metricsPorts)]) {
      const open = await fetch(`http://127.0.0.1:${port}/`).then(() => true, () => false);
      assert.equal(open, false, `port ${port} still served`);
    }
  });
});
