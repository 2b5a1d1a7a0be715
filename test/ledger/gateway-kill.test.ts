/**
 * The gateway killed with SIGKILL under traffic, then started again on the same usage spool
 * (GATEWAY_USAGE_SPOOL_DIR): no record lost, none duplicated. The gateway runs as a real child
 * process (the kill must be a real one); auth, quota, the ledger and the inference worker run
 * in-process and talk to it over gRPC. The worker uses the simulator engine: this is a fault
 * test about delivery, not about inference.
 *
 * Definitions (docs/ledger.md): a request *completed before the kill* when its client had the
 * whole response at least GRACE_MS before the signal; it is *lost* if it has no record once the
 * restarted gateway has drained. Requests still in flight within GRACE_MS of the kill (the
 * gateway spools a record in the event-loop turns that end the response) may or may not have a
 * record, never two. Records wait GATEWAY_USAGE_FLUSH_MS = 2 s in the gateway here, so without
 * the spool the kill would lose every record of the last two seconds.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { freePort } from '../helpers/child-worker.js';
import { startPlatform, waitFor, type Platform } from '../helpers/platform.js';
import { sseRequest } from '../helpers/sse-client.js';
import { unthrottledTiers } from '../helpers/tiers.js';

const root = path.join(import.meta.dirname, '..', '..');
const ask = { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 };
const GRACE_MS = 100;

interface ChildGateway {
  port: number;
  child: ChildProcess;
  output(): string;
}

async function startChildGateway(platform: Platform, env: Record<string, string>): Promise<ChildGateway> {
  const port = await freePort();
  let output = '';
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'gateway/src/main.ts')], {
    cwd: root,
    env: {
      ...process.env,
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_PORT: String(port),
      GATEWAY_GRPC_PORT: String(await freePort()),
      AUTH_ADDRESS: `127.0.0.1:${platform.authPort}`,
      QUOTA_ADDRESS: `127.0.0.1:${platform.quotaPort}`,
      LEDGER_ADDRESS: `127.0.0.1:${platform.ledger.port}`,
      GATEWAY_REGISTRY_ADDRESS: 'off',
      INFERENCE_WORKERS: platform.workers.map((w) => `cpu=127.0.0.1:${w.port}`).join(','),
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const until = Date.now() + 60_000;
  while (!output.includes('gateway listening')) {
    if (child.exitCode !== null || Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`gateway did not start: ${output.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, child, output: () => output };
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

describe('usage delivery when the gateway is killed', () => {
  it('SIGKILL under traffic, restart on the same spool: every completed request has exactly one record', { timeout: 180_000 }, async () => {
    const tiers = unthrottledTiers();
    const platform = await startPlatform({ gatewayEnv: { TIERS_FILE: tiers }, quotaEnv: { TIERS_FILE: tiers } });
    const spoolDir = mkdtempSync(path.join(tmpdir(), 'usage-spool-'));
    const env = { TIERS_FILE: tiers, GATEWAY_USAGE_SPOOL_DIR: spoolDir, GATEWAY_USAGE_FLUSH_MS: '2000', GATEWAY_USAGE_BATCH_MAX: '5000' };
    const gateways: ChildGateway[] = [];
    try {
      let gateway = await startChildGateway(platform, env);
      gateways.push(gateway);
      const completed: Array<{ id: string; at: number }> = [];
      let attempts = 0;
      let failed = 0;
      let stop = false;
      const traffic = async (): Promise<void> => {
        while (!stop) {
          attempts++;
          try {
            const r = await sseRequest({ port: gateway.port, path: '/demo/chat/v1/chat/completions', key: platform.demoKey, body: ask });
            if (r.status === 200 && r.ending === 'json') completed.push({ id: String(r.headers['x-request-id']), at: performance.now() });
            else failed++;
          } catch {
            failed++; // the connection died with the gateway, or nothing listens yet
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      };
      const clients = [traffic(), traffic(), traffic()];
      await waitFor(() => completed.length >= 60, 60_000, 'traffic before the kill');
      const killedAt = performance.now();
      gateway.child.kill('SIGKILL');
      await exited(gateway.child);
      const beforeKill = completed.filter((c) => c.at <= killedAt - GRACE_MS).map((c) => c.id);
      const storedAtKill = (await storedIds(platform)).length;

      gateway = await startChildGateway(platform, env);
      gateways.push(gateway);
      const restartedAt = completed.length;
      await waitFor(() => completed.length >= restartedAt + 30, 60_000, 'traffic after the restart');
      stop = true;
      await Promise.all(clients);
      // A clean stop delivers what the second gateway still buffers (and empties the spool).
      gateway.child.kill('SIGTERM');
      await exited(gateway.child);
      assert.equal(gateway.child.exitCode, 0, gateway.output().slice(-2000));

      const stored = await storedIds(platform);
      const recovered = Number(/"records":(\d+)[^\n]*usage records recovered from the spool/.exec(gateway.output())?.[1] ?? 0);
      const ids = new Set(stored);
      const lost = beforeKill.filter((id) => !ids.has(id));
      const inFlight = completed.length - beforeKill.length - (completed.length - restartedAt);
      console.log(
        `# ${attempts} requests sent, ${completed.length} completed, ${failed} failed (cut by the kill or refused while no gateway listened); ${beforeKill.length} completed before the kill, ` +
          `${storedAtKill} records in the ledger right after the kill, ${recovered} recovered from the spool; ${stored.length} records; ` +
          `${lost.length} lost; ${inFlight} completed within ${GRACE_MS} ms of the kill`,
      );
      assert.ok(recovered > 0, 'the restarted gateway delivered records from the spool');
      assert.equal(ids.size, stored.length, 'no request has two records');
      assert.deepEqual(lost, [], 'every request completed before the kill has its record');
      for (const c of completed.slice(restartedAt)) assert.ok(ids.has(c.id), `request ${c.id} after the restart has its record`);
      assert.ok(stored.length <= attempts, 'no record without a request');
    } finally {
      for (const g of gateways) {
        g.child.kill('SIGKILL');
        await exited(g.child);
      }
      await platform.stop();
      rmSync(spoolDir, { recursive: true, force: true });
    }
  });
});

/** Every record id of the demo project, read through the (in-process) gateway's usage route. */
async function storedIds(platform: Platform): Promise<string[]> {
  const ids: string[] = [];
  let after = '';
  for (;;) {
    const res = await fetch(
      `http://127.0.0.1:${platform.gateway.port}/demo/v1/usage/records?start_time=0&limit=1000${after ? `&after=${after}` : ''}`,
      { headers: { authorization: `Bearer ${platform.demoKey}` } },
    );
    assert.equal(res.status, 200);
    const body = (await res.json()) as { data: Array<{ id: string }>; has_more: boolean; last_id: string };
    ids.push(...body.data.map((r) => r.id));
    if (!body.has_more) return ids;
    after = body.last_id;
  }
}
