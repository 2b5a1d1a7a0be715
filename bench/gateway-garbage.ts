/**
 * Bytes the gateway allocates per request, and its CPU time per request, measured inside the
 * gateway process: figures that hardly depend on the host's load (unlike wall time). Ours and,
 * with --baseline, a second stack of another checkout (its dist/, built there), alternating, several
 * rounds, medians and the ratio ours / baseline printed.
 *
 *   node --import tsx bench/gateway-garbage.ts [--baseline=<checkout>] [--rounds=7] [--requests=300] [--rate=100]
 *       [--saturate=<seconds>]
 *
 * Every process of a stack runs with a 128 MB young generation (`--min/max-semi-space-size`), so a
 * run of `--requests` requests fits in new space without a scavenge; the gateway gets a preload that,
 * on SIGUSR1, runs a full collection (`--expose-gc`), on SIGUSR2 prints its new-space bytes in use,
 * its collection count and its CPU time. Garbage per
 * request = growth of new space over the run / requests answered (a run in which a scavenge fell is
 * reported as not measured, NaN). 16-token mock upstream, paced load (`pacedLoad`).
 *
 * --saturate=<seconds>: per round and kind also a closed-loop run (autocannon, 32 connections, as
 * `npm run bench` saturates) and the gateway's CPU time per request answered in it (/proc), the
 * figure of the generated report's "Where our CPU goes" (here with the large young generation).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { pacedLoad } from './lib/http-load.js';
import { saturate } from './lib/autocannon.js';
import { ChildProcesses, cpuMs as procCpuMs, type Proc } from './lib/procs.js';
import { fmt, median } from './lib/stats.js';
import { spec, startMock, startOurPlatform, validate, writeBenchTiers, type Target } from './lib/targets.js';
import { openaiEngine } from './gateway/context.js';

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    rounds: { type: 'string', default: '7' },
    requests: { type: 'string', default: '300' },
    rate: { type: 'string', default: '100' },
    saturate: { type: 'string', default: '0' },
  },
});
const rounds = Number(values.rounds);
const requests = Number(values.requests);
const rate = Number(values.rate);
const saturateSeconds = Number(values.saturate);
if (!(Number.isFinite(saturateSeconds) && saturateSeconds >= 0)) throw new Error('--saturate must be a number of seconds');
for (const [name, v] of Object.entries({ rounds, requests, rate })) {
  if (!(Number.isFinite(v) && v > 0)) throw new Error(`--${name} must be a positive number`);
}

const PROBE = `
import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';
let scavenges = 0;
new PerformanceObserver((list) => {
  scavenges += list.getEntries().length;
}).observe({ entryTypes: ['gc'] });
process.on('SIGUSR1', () => globalThis.gc());
process.on('SIGUSR2', () => {
  const used = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_used_size ?? 0;
  const cpu = process.cpuUsage();
  process.stderr.write('GCPROBE ' + JSON.stringify({ used, scavenges, cpuUs: cpu.user + cpu.system }) + '\\n');
});
`;

interface Probe {
  used: number;
  scavenges: number;
  cpuUs: number;
}

async function probe(p: Proc): Promise<Probe> {
  const before = p.output().lastIndexOf('GCPROBE ');
  p.child.kill('SIGUSR2');
  for (let i = 0; i < 80; i++) {
    await sleep(25);
    const text = p.output();
    const at = text.lastIndexOf('GCPROBE ');
    if (at < 0 || at === before) continue;
    const end = text.indexOf('\n', at);
    if (end < 0) continue;
    return JSON.parse(text.slice(at + 8, end)) as Probe;
  }
  throw new Error(`${p.name} did not answer the probe`);
}

const root = path.resolve(import.meta.dirname, '..');
const workDir = mkdtempSync(path.join(os.tmpdir(), 'xero-garbage-'));
const children = new ChildProcesses();
const stops: Array<() => Promise<void>> = [];
const load = os.loadavg()[0] ?? Number.NaN;
try {
  const mock = await startMock({ root, children }, { tokens: 16 });
  stops.push(() => mock.target.stop());
  const probeFile = path.join(workDir, 'probe.mjs');
  writeFileSync(probeFile, PROBE);
  const stack = async (stackRoot: string, label: string): Promise<{ target: Target; gateway: Proc }> => {
    const dir = mkdtempSync(path.join(workDir, 'stack-'));
    const ours = await startOurPlatform({
      host: { root: stackRoot, children },
      dir,
      tiersFile: writeBenchTiers(root, dir),
      inferenceEnv: openaiEngine(mock.url),
      capacity: 256,
      label,
      nodeArgs: ['--min-semi-space-size=128', '--max-semi-space-size=128', '--expose-gc'],
      env: { gateway: { NODE_OPTIONS: `--import=${probeFile}` } },
    });
    stops.push(() => ours.target.stop());
    return { target: ours.target, gateway: ours.gateway };
  };
  const compared = [await stack(root, 'ours')];
  if (values.baseline !== undefined) compared.push(await stack(path.resolve(values.baseline), `baseline (${path.basename(values.baseline)})`));
  for (const s of compared) {
    await validate(s.target);
    for (const stream of [false, true]) await pacedLoad(spec(s.target, stream), { rate, durationMs: 2_000 });
  }
  // figures[label][measure] = one value per round
  const figures = new Map<string, Map<string, number[]>>();
  const add = (label: string, what: string, v: number): void => {
    const m = figures.get(label) ?? new Map<string, number[]>();
    figures.set(label, m);
    m.set(what, [...(m.get(what) ?? []), v]);
  };
  for (let r = 0; r < rounds; r++) {
    for (const stream of [false, true]) {
      for (const s of r % 2 === 0 ? compared : [...compared].reverse()) {
        const kind = stream ? 'stream' : 'non-stream';
        // Start each run with an empty young generation: a full collection now, not inside the run.
        s.gateway.child.kill('SIGUSR1');
        await sleep(300);
        const a = await probe(s.gateway);
        const result = await pacedLoad(spec(s.target, stream), { rate, durationMs: (requests / rate) * 1000 });
        const b = await probe(s.gateway);
        const n = Math.max(1, result.ok);
        const kb = b.scavenges === a.scavenges && b.used >= a.used ? (b.used - a.used) / n / 1024 : Number.NaN;
        const cpuMs = (b.cpuUs - a.cpuUs) / n / 1000;
        add(s.target.label, `${kind} garbage KB/req`, kb);
        add(s.target.label, `${kind} CPU ms/req`, cpuMs);
        process.stderr.write(`round ${r + 1} ${kind} ${s.target.label}: ${result.ok}/${result.sent} ok, ${fmt(kb, 1)} KB, ${fmt(cpuMs, 3)} ms CPU per request\n`);
        if (saturateSeconds > 0) {
          const before = procCpuMs(s.gateway.pid);
          const sat = await saturate(spec(s.target, stream), 32, saturateSeconds);
          const ms = (procCpuMs(s.gateway.pid) - before) / Math.max(1, sat.ok);
          add(s.target.label, `${kind} CPU ms/req at saturation`, ms);
          process.stderr.write(`  saturation: ${fmt(sat.rps, 0)} req/s, ${sat.failed} failed, gateway ${fmt(ms, 3)} ms CPU per request\n`);
        }
      }
    }
  }
  const labels = [...figures.keys()];
  const lines = [
    `Gateway per request (median of ${rounds} rounds), ${requests} requests at ${rate} req/s per run, 16 tokens; load average at start ${load.toFixed(2)}`,
    '',
    `| measure | ${labels.join(' | ')} |${labels.length > 1 ? ' ratio |' : ''}`,
    `|---|${labels.map(() => '---:').join('|')}|${labels.length > 1 ? '---:|' : ''}`,
  ];
  for (const what of figures.get(labels[0] ?? '')?.keys() ?? []) {
    const meds = labels.map((l) => median(figures.get(l)?.get(what) ?? []));
    const ratio = meds.length > 1 ? ` ${fmt((meds[0] ?? Number.NaN) / (meds[1] ?? Number.NaN), 2)} |` : '';
    lines.push(`| ${what} | ${meds.map((v) => fmt(v, what.includes('KB') ? 1 : 3)).join(' | ')} |${ratio}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  rmSync(workDir, { recursive: true, force: true });
}
process.exit(0);
