/** The openai engine's HTTP transport: keep-alive reuse, the connection cap, cancel, TLS with an operator CA. */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeTestCa } from '../../../../../test/helpers/dev-certs.js';
import { createUpstreamHttp, readText } from './upstream-http.js';

const servers: Server[] = [];
after(() => {
  for (const s of servers) s.closeAllConnections();
  return Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

/** An upstream answering `ok <path>`; `/slow` sends its head then waits `hangMs` before ending. */
async function upstream(hangMs = 10_000): Promise<{ url: string; connections: () => number; closed: () => number }> {
  let connections = 0;
  let closed = 0;
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    if (req.url === '/v1/slow') {
      res.write('first ');
      const timer = setTimeout(() => res.end('last'), hangMs);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    res.end(`ok ${req.url}`);
  });
  server.on('connection', (socket) => {
    connections += 1;
    socket.on('close', () => (closed += 1));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, connections: () => connections, closed: () => closed };
}

describe('upstream HTTP transport', () => {
  it('reuses one keep-alive connection for sequential requests whose bodies were read', async () => {
    const up = await upstream();
    const client = createUpstreamHttp(up.url, { maxSockets: 4 });
    for (let i = 0; i < 5; i++) {
      const res = await client.request({ method: 'GET', path: '/models', headers: {}, signal: new AbortController().signal });
      assert.equal(res.status, 200);
      assert.equal(await readText(res.body), 'ok /v1/models');
      await new Promise((r) => setImmediate(r)); // the connection is free again one loop turn after its answer
    }
    assert.equal(up.connections(), 1);
    client.closeIdle();
  });

  it('back-to-back requests reuse their keep-alive connections', async () => {
    const up = await upstream();
    const client = createUpstreamHttp(up.url, { maxSockets: 4 });
    for (let i = 0; i < 10; i++) {
      const res = await client.request({ method: 'GET', path: '/models', headers: {}, signal: new AbortController().signal });
      assert.equal(await readText(res.body), 'ok /v1/models');
    }
    assert.ok(up.connections() <= 2, `${up.connections()} connections for 10 sequential requests`);
    client.closeIdle();
  });

  it('a repeated response header is read as its first value', async () => {
    const server = createServer((_req, res) => {
      res.setHeader('retry-after', ['7', '9']);
      res.setHeader('content-type', 'text/plain');
      res.end('ok');
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const client = createUpstreamHttp(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, { maxSockets: 1 });
    const res = await client.request({ method: 'GET', path: '/models', headers: {}, signal: new AbortController().signal });
    assert.equal(res.headers['retry-after'], '7');
    assert.equal(res.headers['content-type'], 'text/plain');
    assert.equal(await readText(res.body), 'ok');
    client.closeIdle();
  });

  it('takes requests again after closeIdle()', async () => {
    const up = await upstream();
    const client = createUpstreamHttp(up.url, { maxSockets: 1 });
    const first = await client.request({ method: 'GET', path: '/models', headers: {}, signal: new AbortController().signal });
    assert.equal(await readText(first.body), 'ok /v1/models');
    client.closeIdle();
    const second = await client.request({ method: 'GET', path: '/models', headers: {}, signal: new AbortController().signal });
    assert.equal(await readText(second.body), 'ok /v1/models');
    assert.equal(up.connections(), 2);
    client.closeIdle();
  });

  it('sends Host, the given headers and the body with its content-length', async () => {
    let seen: { headers: Record<string, string | string[] | undefined>; body: string } | undefined;
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        seen = { headers: req.headers, body };
        res.end('ok');
      });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const client = createUpstreamHttp(`http://127.0.0.1:${port}/v1`, { maxSockets: 1 });
    const body = JSON.stringify({ text: 'héllo' });
    const res = await client.request({
      method: 'POST',
      path: '/chat/completions',
      headers: { accept: 'text/event-stream', 'x-request-id': 'req-1' },
      body,
      signal: new AbortController().signal,
    });
    assert.equal(await readText(res.body), 'ok');
    assert.equal(seen?.headers['host'], `127.0.0.1:${port}`);
    assert.equal(seen?.headers['accept'], 'text/event-stream');
    assert.equal(seen?.headers['x-request-id'], 'req-1');
    assert.equal(seen?.headers['content-length'], String(Buffer.byteLength(body)));
    assert.equal(seen?.headers['connection'], 'keep-alive');
    assert.equal(seen?.body, body);
    client.closeIdle();
  });

  it('holds at most maxSockets connections; the rest wait for a free one', async () => {
    const up = await upstream();
    const client = createUpstreamHttp(up.url, { maxSockets: 2 });
    const answers = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const res = await client.request({ method: 'POST', path: '/chat/completions', headers: {}, body: '{}', signal: new AbortController().signal });
        return readText(res.body);
      }),
    );
    assert.deepEqual(answers, Array(6).fill('ok /v1/chat/completions'));
    assert.equal(up.connections(), 2);
    client.closeIdle();
  });

  it('aborting mid-body closes the connection and fails the pending read', async () => {
    const up = await upstream();
    const client = createUpstreamHttp(up.url, { maxSockets: 4 });
    const controller = new AbortController();
    const res = await client.request({ method: 'GET', path: '/slow', headers: {}, signal: controller.signal });
    const chunks = res.body[Symbol.asyncIterator]();
    assert.equal(String((await chunks.next()).value), 'first ');
    const pending = chunks.next();
    controller.abort();
    await assert.rejects(pending);
    const start = performance.now();
    while (up.closed() < 1 && performance.now() - start < 2000) await new Promise((r) => setTimeout(r, 5));
    assert.equal(up.closed(), 1, 'the upstream saw the connection close');
  });

  it('an already-aborted signal sends nothing', async () => {
    const up = await upstream();
    const client = createUpstreamHttp(up.url, { maxSockets: 4 });
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(client.request({ method: 'GET', path: '/models', headers: {}, signal: controller.signal }), { name: 'AbortError' });
    assert.equal(up.connections(), 0);
  });

  it('an https upstream is trusted through NODE_EXTRA_CA_CERTS, and refused without it', async () => {
    const ca = makeTestCa('upstream');
    const server = createTlsServer({ cert: readFileSync(ca.certFile), key: readFileSync(ca.keyFile) }, (req, res) => res.end(`tls ${req.url}`));
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    // NODE_EXTRA_CA_CERTS is read at process start: the client runs in a child process.
    const script = [
      `import { createUpstreamHttp, readText } from ${JSON.stringify(path.join(import.meta.dirname, 'upstream-http.ts'))};`,
      `const c = createUpstreamHttp(${JSON.stringify(url)}, { maxSockets: 1 });`,
      `try { const r = await c.request({ method: 'GET', path: '/models', headers: {}, signal: new AbortController().signal });`,
      `console.log(r.status, await readText(r.body)); } catch (e) { console.log('error', e.code); }`,
      `c.closeIdle();`,
    ].join('\n');
    const run = async (env: NodeJS.ProcessEnv): Promise<string> => {
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env });
      return stdout.trim();
    };
    const { NODE_EXTRA_CA_CERTS: _, ...env } = process.env;
    assert.equal(await run({ ...env, NODE_EXTRA_CA_CERTS: ca.caFile }), '200 tls /v1/models');
    assert.match(await run(env), /^error (UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)$/);
  });
});
