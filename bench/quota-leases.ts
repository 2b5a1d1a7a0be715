/**
 * CPU per request of the quota path with and without leases, side by side in one run: a quota
 * service in its own process (in-memory store, as `npm start` runs it), and in this process the
 * gateway's quota port (real gRPC), plain or wrapped by the lease manager with its defaults. One
 * hot key at a fixed rate, reserve + settle per request, a fresh key per phase (so every phase
 * pays its own warm-up to hot), modes alternating over rounds; medians printed.
 *
 *   node --import tsx bench/quota-leases.ts [--rate=400] [--seconds=4] [--rounds=3]
 *
 * "gateway side" is this process's CPU: the quota port, gRPC client and lease manager, plus the
 * load loop itself (the same in both modes).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createBreaker } from '../gateway/src/breaker.js';
import { createLeasingQuotaPort } from '../gateway/src/quota-leases.js';
import { createQuotaPort, type QuotaPort } from '../gateway/src/upstreams.js';
import { createLogger } from '../lib/logging/logger.js';
import { ChildProcesses, cpuMs, freePort, stopProcess, waitUntil } from './lib/procs.js';
import { fmt, median } from './lib/stats.js';
import { writeBenchTiers } from './lib/targets.js';

const { values } = parseArgs({
  options: { rate: { type: 'string', default: '400' }, seconds: { type: 'string', default: '4' }, rounds: { type: 'string', default: '3' } },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const root = path.resolve(import.meta.dirname, '..');
const workDir = mkdtempSync(path.join(os.tmpdir(), 'xero-quota-leases-'));
const children = new ChildProcesses();
const logger = createLogger('bench', 'silent');
const TIER = 'cpu_standard';

const port = await freePort();
const quota = children.start('quota', ['--import', 'tsx', 'services/quota/src/main.ts'], {
  cwd: root,
  env: { ...process.env, QUOTA_PORT: String(port), TIERS_FILE: writeBenchTiers(root, workDir), LOG_LEVEL: 'warn' },
});

const breaker = () =>
  createBreaker('quota', { errorThresholdPercentage: 50, volumeThreshold: 10, resetTimeoutMs: 10_000, rollingWindowMs: 10_000, timeoutMs: 2_000 }, logger);
const plain = createQuotaPort({ address: `127.0.0.1:${port}`, timeoutMs: 2_000, breaker: breaker(), logger, policy: 'fail-closed' });
const inner = createQuotaPort({ address: `127.0.0.1:${port}`, timeoutMs: 2_000, breaker: breaker(), logger, policy: 'fail-closed' });
const admissions = { lease: 0, reserve: 0 };
const leasing = createLeasingQuotaPort(inner, inner, {
  lifetimeMs: 500,
  hotRequests: 8,
  hotWindowMs: 1_000,
  clock: () => performance.now(),
  logger,
  onAdmission: (source) => admissions[source]++,
});

/** `rate` requests/s for `seconds`, 10 ms ticks; each reserves then settles below its estimate. */
async function phase(q: QuotaPort): Promise<{ requests: number; denied: number; failed: number }> {
  const keyId = `bench-${randomUUID()}`;
  const perTick = rate / 100;
  const ticks = seconds * 100;
  const running: Array<Promise<void>> = [];
  let denied = 0;
  let failed = 0;
  let carry = 0;
  const start = performance.now();
  for (let t = 0; t < ticks; t++) {
    carry += perTick;
    for (; carry >= 1; carry--) {
      const requestId = randomUUID();
      running.push(
        q.reserve({ requestId, keyId, tier: TIER, tokens: 200 }).then(
          (r) => {
            if (r?.decision !== 1) denied++;
            else q.settle({ requestId, keyId, tier: TIER, tokens: 120 });
          },
          // The quota service did not answer in time (an overloaded host): counted, not fatal.
          () => void failed++,
        ),
      );
    }
    const next = start + (t + 1) * 10;
    await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
  }
  await Promise.all(running);
  // Let the settlements (5 ms batches) and lease releases go out inside the phase.
  await new Promise((r) => setTimeout(r, 600));
  return { requests: running.length, denied, failed };
}

try {
  await waitUntil(async () => (await plain.limits({ requestId: 'warmup', keyId: 'warmup', tier: TIER })) !== undefined, 30_000, 'quota service');
  await phase(plain);
  await phase(leasing);
  const figures = { off: { quota: [] as number[], gateway: [] as number[] }, on: { quota: [] as number[], gateway: [] as number[] } };
  for (let r = 0; r < rounds; r++) {
    for (const mode of r % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
      const before = { quota: cpuMs(quota.pid), self: process.cpuUsage() };
      const seen = { ...admissions };
      const { requests, denied, failed } = await phase(mode === 'on' ? leasing : plain);
      const selfUs = process.cpuUsage(before.self);
      const quotaMs = (cpuMs(quota.pid) - before.quota) / requests;
      const gatewayMs = (selfUs.user + selfUs.system) / 1000 / requests;
      figures[mode].quota.push(quotaMs);
      figures[mode].gateway.push(gatewayMs);
      const leased = admissions.lease - seen.lease;
      console.log(
        `round ${r + 1} leases ${mode}: ${requests} requests (${denied} denied, ${failed} failed${mode === 'on' ? `, ${leased} from leases` : ''}), quota ${fmt(quotaMs, 3)} ms CPU/request, gateway side ${fmt(gatewayMs, 3)}`,
      );
    }
  }
  const m = (v: number[]): number => median(v);
  console.log(`\nload average ${fmt(os.loadavg()[0] ?? Number.NaN, 2)}; ${rate} req/s of one key, ${seconds} s per phase, ${rounds} rounds (medians)\n`);
  console.log('| CPU ms per request | leases off | leases on | on / off |');
  console.log('|---|---:|---:|---:|');
  for (const proc of ['quota', 'gateway'] as const) {
    const off = m(figures.off[proc]);
    const on = m(figures.on[proc]);
    console.log(`| ${proc === 'quota' ? 'quota process' : 'gateway side (this process)'} | ${fmt(off, 3)} | ${fmt(on, 3)} | ${fmt(on / off, 2)}× |`);
  }
} finally {
  await leasing.close();
  await plain.close();
  await stopProcess(quota);
  rmSync(workDir, { recursive: true, force: true });
}
