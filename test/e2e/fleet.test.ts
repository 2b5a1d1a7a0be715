/**
 * Workers join and leave at run time through the fleet registry (hosted by the auth service):
 * a worker process started later is routable without a gateway restart and is given requests
 * while the first worker stays in the pool (which of the two serves what is the scorer's choice,
 * covered by the routing tests: here the joiner is the faster one), a SIGKILLed worker costs no request that had not started on it and leaves the
 * gateway's pool within the lease time, a worker restarted in place under a new id stays routable
 * after its old lease expires, and two gateways on one registry see the same workers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadGatewayConfig } from '../../gateway/src/config.js';
import { startGateway } from '../../gateway/src/start.js';
import { createLogger } from '../../lib/logging/logger.js';
import { startChildWorker } from '../helpers/child-worker.js';
import { startPlatform, waitFor } from '../helpers/platform.js';

const LEASE_MS = 1500;
/** Join/leave rounds of the first test: its p50/p99 figures are printed, not asserted. */
const ROUNDS = 5;
const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)] ?? NaN;

async function chat(base: string, key: string): Promise<{ status: number; worker: string | null }> {
  const r = await fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }),
  });
  await r.arrayBuffer();
  return { status: r.status, worker: r.headers.get('x-xerotier-worker-id') };
}

describe('fleet: workers join and leave at run time', () => {
  it('a worker started later joins, serves, and leaves the pool after SIGKILL', async () => {
    const platform = await startPlatform({
      authEnv: { AUTH_REGISTRY_LEASE_TTL_MS: String(LEASE_MS) },
      gatewayEnv: { TIERS_FILE: (await import('../helpers/tiers.js')).unthrottledTiers() },
      quotaEnv: { TIERS_FILE: (await import('../helpers/tiers.js')).unthrottledTiers() },
    });
    const joinMs: number[] = [];
    const leaveMs: number[] = [];
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const started = performance.now();
        const child = await startChildWorker({
          INFERENCE_REGISTRY_ADDRESS: `127.0.0.1:${platform.authPort}`,
          INFERENCE_WORKER_ID: `joiner-${round}`,
          SIM_TOKENS_PER_SECOND: '0',
          SIM_TTFT_MS: '0',
        });
        const address = `127.0.0.1:${child.port}`;
        try {
          const routable = () => platform.gateway.fleet.workers.some((w) => w.address === address && w.connected && w.status?.modelLoaded === true);
          await waitFor(routable, 10_000, 'the new worker to become routable');
          joinMs.push(performance.now() - started);
          const seen = new Set<string>();
          for (let i = 0; i < 40; i++) {
            const r = await chat(platform.baseUrl(), platform.demoKey);
            assert.equal(r.status, 200);
            if (r.worker) seen.add(r.worker);
          }
          assert.ok(seen.has(`joiner-${round}`), `the new worker served requests (${[...seen].join(', ')})`);
          const original = `127.0.0.1:${platform.workers[0]!.port}`;
          assert.ok(
            platform.gateway.fleet.workers.some((w) => w.address === original && w.connected && w.status?.modelLoaded === true),
            'the first worker is still routable beside the joiner',
          );

          await child.kill('SIGKILL');
          const killed = performance.now();
          const statuses: number[] = [];
          while (platform.gateway.fleet.workers.some((w) => w.address === address)) {
            statuses.push((await chat(platform.baseUrl(), platform.demoKey)).status);
            if (performance.now() - killed > LEASE_MS * 4) break;
          }
          leaveMs.push(performance.now() - killed);
          assert.ok(!platform.gateway.fleet.workers.some((w) => w.address === address), 'the killed worker left the pool');
          assert.deepEqual([...new Set(statuses)], statuses.length ? [200] : [], 'requests kept being served by the survivor');
        } finally {
          await child.kill('SIGKILL');
        }
      }
      console.log(
        `# ${ROUNDS} rounds: worker start → routable p50 ${pct(joinMs, 50).toFixed(0)} ms, p99 ${pct(joinMs, 99).toFixed(0)} ms; ` +
          `SIGKILL → removed p50 ${pct(leaveMs, 50).toFixed(0)} ms, p99 ${pct(leaveMs, 99).toFixed(0)} ms (lease ${LEASE_MS} ms)`,
      );
    } finally {
      await platform.stop();
    }
  });

  it('a worker killed and restarted on the same address under a new id stays routable after the old lease expires', async () => {
    // What a container restart policy does: same address, new process, new random worker id,
    // back well within the dead process's lease.
    const platform = await startPlatform({ authEnv: { AUTH_REGISTRY_LEASE_TTL_MS: String(LEASE_MS) } });
    const registry = { INFERENCE_REGISTRY_ADDRESS: `127.0.0.1:${platform.authPort}` };
    const first = await startChildWorker({ ...registry, INFERENCE_WORKER_ID: 'before-crash' });
    const address = `127.0.0.1:${first.port}`;
    const routable = () => platform.gateway.fleet.workers.some((w) => w.address === address && w.connected && w.status?.modelLoaded === true);
    let second: Awaited<ReturnType<typeof startChildWorker>> | undefined;
    try {
      await waitFor(routable, 10_000, 'the first worker to become routable');
      await first.kill('SIGKILL');
      second = await startChildWorker({ ...registry, INFERENCE_WORKER_ID: 'after-crash', INFERENCE_PORT: String(first.port), SIM_TOKENS_PER_SECOND: '0', SIM_TTFT_MS: '0' });
      await waitFor(
        () => platform.gateway.fleet.workers.some((w) => w.address === address && w.connected && w.status?.workerId === 'after-crash'),
        10_000,
        'the restarted worker to become routable',
      );
      // Past the dead process's lease (swept every quarter of it): the address still routes.
      await new Promise((r) => setTimeout(r, LEASE_MS * 2));
      assert.ok(routable(), 'the restarted worker is still in the pool after the old lease expired');
      const workers = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const r = await chat(platform.baseUrl(), platform.demoKey);
        assert.equal(r.status, 200);
        if (r.worker) workers.add(r.worker);
      }
      assert.ok(workers.has('after-crash'), `the restarted worker serves (${[...workers].join(', ')})`);
    } finally {
      await first.kill('SIGKILL');
      await second?.kill('SIGKILL');
      await platform.stop();
    }
  });

  it('two gateways on one registry converge on the same workers; a draining worker leaves at once', async () => {
    const platform = await startPlatform({ authEnv: { AUTH_REGISTRY_LEASE_TTL_MS: String(LEASE_MS) } });
    const second = await startGateway(
      loadGatewayConfig({
        GATEWAY_PORT: '0',
        AUTH_ADDRESS: `127.0.0.1:${platform.authPort}`,
        QUOTA_ADDRESS: `127.0.0.1:${platform.quotaPort}`,
        INFERENCE_WORKERS: '',
      }),
      { logger: createLogger('gateway-2', 'silent') },
    );
    try {
      const children = await Promise.all(
        [0, 1].map((i) => startChildWorker({ INFERENCE_REGISTRY_ADDRESS: `127.0.0.1:${platform.authPort}`, INFERENCE_WORKER_ID: `pair-${i}` })),
      );
      const addresses = children.map((c) => `127.0.0.1:${c.port}`).sort();
      // The platform's own in-process worker registers too; these are the two started here.
      const registryAddresses = (g: typeof second) =>
        g.fleet.workers.filter((w) => w.source === 'registry' && addresses.includes(w.address)).map((w) => w.address).sort();
      await waitFor(() => registryAddresses(second).length === 2 && registryAddresses(platform.gateway).length === 2, 10_000, 'both gateways to see both workers');
      assert.deepEqual(registryAddresses(second), addresses);
      assert.deepEqual(registryAddresses(platform.gateway), addresses);
      // SIGTERM: the worker deregisters before draining, well before its lease would expire.
      const stopped = performance.now();
      await children[0]!.kill('SIGTERM');
      await waitFor(() => registryAddresses(second).length === 1 && registryAddresses(platform.gateway).length === 1, LEASE_MS, 'the draining worker to leave');
      console.log(`# SIGTERM → gone from both gateways in ${(performance.now() - stopped).toFixed(0)} ms`);
      await children[1]!.kill('SIGKILL');
      // The in-process worker is known to the second gateway through the registry alone.
      assert.ok(second.fleet.workers.some((w) => w.address === `127.0.0.1:${platform.workers[0]!.port}` && w.source === 'registry'));
    } finally {
      await second.stop();
      await platform.stop();
    }
  });
});
