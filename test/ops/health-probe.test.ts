/**
 * docker/health-probe.ts: the compose healthcheck of every service. In-process against real
 * servers on port 0 (gRPC health and HTTP), plus once as a child process for the exit code.
 */
import { execFile } from 'node:child_process';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'nice-grpc';
import { HealthDefinition, HealthServiceImpl, HealthState } from 'nice-grpc-server-health';
import { main, probeGrpc } from '../../docker/health-probe.js';

const root = path.join(import.meta.dirname, '..', '..');
const SERVICE = 'xerotier.test.v1.TestService';

async function withHealthServer(run: (address: string, health: HealthState) => Promise<void>): Promise<void> {
  const health = HealthState();
  const server = createServer();
  server.add(HealthDefinition, HealthServiceImpl(health));
  const port = await server.listen('127.0.0.1:0');
  try {
    await run(`127.0.0.1:${port}`, health);
  } finally {
    await server.shutdown();
  }
}

async function withHttpServer(status: number, run: (url: string) => Promise<void>): Promise<void> {
  const server: HttpServer = createHttpServer((_req, res) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await run(`http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createHttpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

function collect(): { lines: string[]; log: (line: string) => void } {
  const lines: string[] = [];
  return { lines, log: (line) => lines.push(line) };
}

describe('health-probe (gRPC)', () => {
  it('exits 0 while the service is SERVING and 1 once it is NOT_SERVING', async () => {
    await withHealthServer(async (address, health) => {
      health.setStatus('healthy', SERVICE);
      const out = collect();
      assert.equal(await main([address, SERVICE], out.log), 0);
      assert.deepEqual(out.lines, [`${address} ${SERVICE}: SERVING`]);
      health.setStatus('unhealthy', SERVICE);
      assert.equal(await main([address, SERVICE], out.log), 1);
      assert.equal(out.lines[1], `${address} ${SERVICE}: NOT_SERVING`);
    });
  });

  it('checks the whole server when no service is named', async () => {
    await withHealthServer(async (address, health) => {
      assert.equal(await main([address], collect().log), 0, 'nice-grpc health: the server is healthy by default');
      health.setStatus('unhealthy');
      const result = await probeGrpc(address);
      assert.deepEqual(result, { healthy: false, detail: `${address} (server): NOT_SERVING` });
    });
  });

  it('exits 1 for an unknown service and for an unreachable address', async () => {
    await withHealthServer(async (address) => {
      const out = collect();
      assert.equal(await main([address, 'no.such.Service'], out.log), 1);
      assert.match(out.lines[0] ?? '', /NOT_FOUND/);
    });
    const port = await closedPort();
    const out = collect();
    assert.equal(await main([`127.0.0.1:${port}`, SERVICE], out.log), 1);
    assert.match(out.lines[0] ?? '', /UNAVAILABLE/);
  });

  it('gives up after the timeout when nothing answers', async () => {
    // A TCP server that accepts and never speaks HTTP/2.
    const silent = createHttpServer();
    silent.on('connection', () => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const started = Date.now();
      const result = await probeGrpc(`127.0.0.1:${(silent.address() as AddressInfo).port}`, SERVICE, 300);
      assert.equal(result.healthy, false);
      assert.ok(Date.now() - started < 5000, 'bounded by the timeout');
    } finally {
      silent.closeAllConnections();
      await new Promise((r) => silent.close(r));
    }
  });
});

describe('health-probe (HTTP)', () => {
  it('exits 0 on 2xx and 1 otherwise', async () => {
    await withHttpServer(200, async (url) => {
      const out = collect();
      assert.equal(await main([url], out.log), 0);
      assert.deepEqual(out.lines, [`${url}: HTTP 200`]);
    });
    await withHttpServer(503, async (url) => {
      assert.equal(await main([url], collect().log), 1);
    });
    const port = await closedPort();
    const out = collect();
    assert.equal(await main([`http://127.0.0.1:${port}/healthz`], out.log), 1);
    assert.match(out.lines[0] ?? '', /ECONNREFUSED/);
  });
});

describe('health-probe usage', () => {
  it('exits 2 on bad arguments', async () => {
    for (const argv of [[], ['no-port'], ['host:1', 'svc', 'extra'], ['http://127.0.0.1:1/x', 'svc']]) {
      const out = collect();
      assert.equal(await main(argv, out.log), 2, JSON.stringify(argv));
      assert.match(out.lines[0] ?? '', /^usage:/);
    }
  });

  it('runs as a script: the exit code is the verdict', async () => {
    await withHealthServer(async (address, health) => {
      health.setStatus('healthy', SERVICE);
      const run = (args: string[]) =>
        new Promise<{ code: number | null; stdout: string }>((resolve) => {
          execFile(process.execPath, ['--import', 'tsx', 'docker/health-probe.ts', ...args], { cwd: root }, (err, stdout) =>
            resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout }),
          );
        });
      assert.deepEqual(await run([address, SERVICE]), { code: 0, stdout: `${address} ${SERVICE}: SERVING\n` });
      health.setStatus('unhealthy', SERVICE);
      assert.equal((await run([address, SERVICE])).code, 1);
      assert.equal((await run([])).code, 2);
    });
  });
});
