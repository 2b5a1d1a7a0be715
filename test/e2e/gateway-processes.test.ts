/**
 * GATEWAY_PROCESSES=2: the gateway as a real cluster (a primary and two gateway processes, real
 * child processes sharing the HTTP and gRPC ports); auth, quota, the ledger and a simulator
 * worker run in-process and are reached over gRPC. What a user and an operator rely on:
 * requests are served by both processes and the primary's /metrics counts them all; a killed
 * process is replaced and serves again; SIGTERM lets an open stream finish and the gateway exits
 * 0; a bad environment fails once, in the primary, before any process is forked.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createSimulatorEngine } from '../../services/inference/src/engines/simulator/simulator-engine.js';
import { freePort } from '../helpers/child-worker.js';
import { sampleValue } from '../helpers/exposition.js';
import { SIMULATOR_DEFAULTS, startPlatform, type Platform } from '../helpers/platform.js';
import { sseRequest } from '../helpers/sse-client.js';
import { unthrottledTiers } from '../helpers/tiers.js';

const root = path.join(import.meta.dirname, '..', '..');
const CHAT = '/demo/chat/v1/chat/completions';
const ask = { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 };

interface ClusterGateway {
  port: number;
  metricsPort: number;
  child: ChildProcess;
  output(): string;
}

interface ProcessView {
  process: number;
  pid: number | null;
  state: string;
  restarts: number;
  http_requests: number | null;
}

function spawnGateway(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  let output = '';
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'gateway/src/main.ts')], {
    cwd: root,
    env: { ...process.env, GATEWAY_HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  return { child, output: () => output };
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

async function until<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function startClusterGateway(platform: Platform, tiers: string): Promise<ClusterGateway> {
  const port = await freePort();
  const metricsPort = await freePort();
  const { child, output } = spawnGateway({
    GATEWAY_PROCESSES: '2',
    GATEWAY_PORT: String(port),
    GATEWAY_GRPC_PORT: String(await freePort()),
    GATEWAY_METRICS_PORT: String(metricsPort),
    AUTH_ADDRESS: `127.0.0.1:${platform.authPort}`,
    QUOTA_ADDRESS: `127.0.0.1:${platform.quotaPort}`,
    LEDGER_ADDRESS: `127.0.0.1:${platform.ledger.port}`,
    GATEWAY_REGISTRY_ADDRESS: 'off',
    INFERENCE_WORKERS: platform.workers.map((w) => `cpu=127.0.0.1:${w.port}`).join(','),
    TIERS_FILE: tiers,
  });
  const gateway = { port, metricsPort, child, output };
  try {
    await until(
      async () => {
        if (child.exitCode !== null) throw new Error('exited');
        return output().includes('gateway processes listening') ? true : undefined;
      },
      90_000,
      'the gateway processes',
    );
    // Both processes see the worker (each has its own fleet): one entry per process.
    await until(
      async () => {
        const view = (await (await fetch(`http://127.0.0.1:${metricsPort}/workers`)).json()) as {
          workers: Array<{ process: number; connected: boolean; model_loaded: boolean }>;
        };
        const ready = view.workers.filter((w) => w.connected && w.model_loaded).map((w) => w.process);
        return ready.includes(1) && ready.includes(2) ? true : undefined;
      },
      30_000,
      'both processes connected to the worker',
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`gateway did not start (${String(err)}): ${output().slice(-3000)}`);
  }
  return gateway;
}

async function processes(gateway: ClusterGateway): Promise<ProcessView[]> {
  const res = await fetch(`http://127.0.0.1:${gateway.metricsPort}/processes`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { processes: ProcessView[] }).processes;
}

/** One chat request on its own connection (no keep-alive: the cluster hands out connections). */
function chatOnNewConnection(port: number, key: string): Promise<number> {
  const payload = JSON.stringify(ask);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: CHAT,
        method: 'POST',
        agent: false,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function sendRequests(gateway: ClusterGateway, key: string, count: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) statuses.push(await chatOnNewConnection(gateway.port, key));
  return statuses;
}

describe('gateway with GATEWAY_PROCESSES=2', () => {
  it('a bad environment fails once, in the primary, with exit code 1', { timeout: 60_000 }, async () => {
    for (const env of [{ GATEWAY_PROCESSES: '0' }, { GATEWAY_PROCESSES: '2', GATEWAY_PORT: 'eighty' }]) {
      const { child, output } = spawnGateway({ ...env, GATEWAY_METRICS_PORT: String(await freePort()) });
      await exited(child);
      assert.equal(child.exitCode, 1, output());
      assert.equal(output().match(/failed to start/g)?.length, 1, output());
      assert.match(output(), env.GATEWAY_PORT ? /GATEWAY_PORT/ : /GATEWAY_PROCESSES/);
      assert.doesNotMatch(output(), /gateway listening/, 'no gateway process was forked');
    }
  });

  it('serves from both processes, aggregates their metrics, replaces a killed process, drains on SIGTERM', { timeout: 240_000 }, async () => {
    const tiers = unthrottledTiers();
    const engine = createSimulatorEngine({ ...SIMULATOR_DEFAULTS, tokensPerSecond: 20, responseTokens: 30 });
    const platform = await startPlatform({ engines: [engine], gatewayEnv: { TIERS_FILE: tiers }, quotaEnv: { TIERS_FILE: tiers } });
    let gateway: ClusterGateway | undefined;
    try {
      gateway = await startClusterGateway(platform, tiers);
      const g = gateway;

      // 1. Requests on separate connections are served by both processes; the counts add up.
      const before = await processes(g);
      const statuses = await sendRequests(g, platform.demoKey, 20);
      assert.deepEqual(statuses, Array(20).fill(200));
      const after = await processes(g);
      const served = after.map((p) => (p.http_requests ?? 0) - (before.find((b) => b.process === p.process)?.http_requests ?? 0));
      console.log(`# 20 requests: ${served.join(' + ')} per process`);
      assert.equal(served.length, 2);
      assert.ok(served.every((n) => n > 0), `each process served some: ${served.join(', ')}`);
      assert.equal(served[0]! + served[1]!, 20);
      const metrics = await (await fetch(`http://127.0.0.1:${g.metricsPort}/metrics`)).text();
      assert.equal(sampleValue(metrics, 'http_requests_total', { route: '/:project/:endpoint/v1/chat/completions', status: '200' }), 20);
      assert.equal(sampleValue(metrics, 'gateway_processes', { state: 'ready' }), 2);
      assert.equal(sampleValue(metrics, 'breaker_state', { target: 'auth' }), 0, 'a gauge is not summed into a false state');

      // 2. A killed process is replaced, and the new one serves.
      const victim = after.find((p) => p.process === 1);
      assert.ok(victim?.pid);
      process.kill(victim.pid, 'SIGKILL');
      const replaced = await until(
        async () => {
          const p = (await processes(g)).find((v) => v.process === 1);
          return p?.state === 'ready' && p.pid !== victim.pid ? p : undefined;
        },
        90_000,
        'process 1 replaced',
      );
      assert.equal(replaced.restarts, 1);
      assert.match(g.output(), /gateway process exited unexpectedly; restarting it/);
      await until(
        async () => {
          const view = (await (await fetch(`http://127.0.0.1:${g.metricsPort}/workers`)).json()) as {
            workers: Array<{ process: number; connected: boolean }>;
          };
          return view.workers.some((w) => w.process === 1 && w.connected) ? true : undefined;
        },
        30_000,
        'the new process connected to the worker',
      );
      assert.deepEqual(await sendRequests(g, platform.demoKey, 10), Array(10).fill(200));
      const newOne = (await processes(g)).find((p) => p.process === 1);
      assert.ok((newOne?.http_requests ?? 0) > 0, 'the new process serves requests');
      // The killed process's counts stay in the sum as last scraped: no counter reset for Prometheus.
      const later = await (await fetch(`http://127.0.0.1:${g.metricsPort}/metrics`)).text();
      assert.equal(sampleValue(later, 'http_requests_total', { route: '/:project/:endpoint/v1/chat/completions', status: '200' }), 30);

      // 3. SIGTERM: the open stream (30 tokens at 20/s) finishes with [DONE]; exit code 0.
      let signalled = false;
      const stream = await sseRequest({
        port: g.port,
        path: CHAT,
        key: platform.demoKey,
        body: { ...ask, max_tokens: 30, stream: true },
        onEvent: () => {
          if (!signalled) {
            signalled = true;
            g.child.kill('SIGTERM');
          }
        },
      });
      assert.ok(signalled, 'the stream had started before SIGTERM');
      assert.equal(stream.status, 200);
      assert.equal(stream.ending, 'done', 'the in-flight stream finished');
      await exited(g.child);
      assert.equal(g.child.exitCode, 0, g.output().slice(-3000));
      assert.equal(g.output().match(/"msg":"stopped"/g)?.length, 3, 'both processes and the primary stopped in order');
    } finally {
      if (gateway) {
        gateway.child.kill('SIGKILL');
        await exited(gateway.child);
      }
      await platform.stop();
    }
  });
});
