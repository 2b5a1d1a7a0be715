/**
 * GATEWAY_PROCESSES: the same platform (gateway → auth, quota → openai-engine worker → mock
 * upstream, as `npm start` runs them, compiled) with a one-process gateway and with an
 * N-process gateway, measured in the same rounds, alternating, so both see the same host load:
 *  - CPU ms per request of the gateway (the primary and its processes: /proc of the process
 *    tree) and of the whole path, at a fixed moderate rate;
 *  - throughput at saturation (autocannon, closed loop) and its p50 latency.
 * With --baseline=<checkout>, a one-process gateway of that checkout joins the rounds.
 *
 *   node --import tsx bench/gateway-processes.ts [--processes=2] [--rate=50] [--seconds=5]
 *       [--sat-seconds=5] [--connections=32] [--rounds=3] [--baseline=<checkout>]
 *
 * Prints a markdown table (medians of the rounds) with the load average; writes nothing. On a
 * host with fewer free cores than the processes, the saturation figure says how the processes
 * share what is left, not what they would do on free cores.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { saturate } from './lib/autocannon.js';
import { pacedLoad } from './lib/http-load.js';
import { ChildProcesses, cpuMs, treeCpuMs } from './lib/procs.js';
import { fmt, median } from './lib/stats.js';
import { spec, startMock, startOurPlatform, validate, writeBenchTiers, type Target } from './lib/targets.js';
import { openaiEngine } from './gateway/context.js';

const { values } = parseArgs({
  options: {
    processes: { type: 'string', default: '2' },
    rate: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '5' },
    'sat-seconds': { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
    baseline: { type: 'string' },
  },
});
const processes = Number(values.processes);
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const satSeconds = Number(values['sat-seconds']);
const connections = Number(values.connections);
const rounds = Number(values.rounds);
const root = path.resolve(import.meta.dirname, '..');
const host = { root, children: new ChildProcesses() };
const dirs: string[] = [];
const targets: Target[] = [];
const loadAtStart = os.loadavg();

async function stack(label: string, gatewayProcesses: number | undefined, stackRoot = root): Promise<Target> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'xero-procs-'));
  dirs.push(dir);
  const started = await startOurPlatform({
    host: { root: stackRoot, children: host.children },
    dir,
    tiersFile: writeBenchTiers(root, dir),
    inferenceEnv: openaiEngine(mockUrl),
    capacity: 256,
    label,
    gatewayProcesses,
  });
  targets.push(started.target);
  return started.target;
}

let mockUrl = '';
try {
  const mock = await startMock(host, { tokens: 16 });
  targets.push(mock.target);
  mockUrl = mock.url;
  const compared = [await stack('1 process', undefined), await stack(`${processes} processes`, processes)];
  if (values.baseline !== undefined) compared.push(await stack(`baseline ${path.basename(values.baseline)}`, undefined, path.resolve(values.baseline)));
  for (const t of compared) {
    await validate(t);
    await pacedLoad(spec(t, false), { rate, durationMs: 2_000 });
    await pacedLoad(spec(t, true), { rate, durationMs: 2_000 });
  }
  // figures[label][measure] = one value per round
  const figures = new Map<string, Map<string, number[]>>();
  const add = (label: string, measure: string, value: number): void => {
    const m = figures.get(label) ?? new Map<string, number[]>();
    figures.set(label, m);
    m.set(measure, [...(m.get(measure) ?? []), value]);
  };
  for (let r = 0; r < rounds; r++) {
    for (const stream of [false, true]) {
      const kind = stream ? 'stream' : 'non-stream';
      const order = r % 2 === 0 ? compared : [...compared].reverse();
      for (const t of order) {
        await t.ready?.();
        const before = t.procs.map((p) => treeCpuMs(p.pid));
        const frontBefore = cpuMs(t.front.pid);
        const paced = await pacedLoad(spec(t, stream), { rate, durationMs: seconds * 1000 });
        const frontAfter = cpuMs(t.front.pid);
        const after = t.procs.map((p) => treeCpuMs(p.pid));
        const per = (i: number): number => ((after[i] ?? 0) - (before[i] ?? 0)) / Math.max(1, paced.ok);
        const gateway = per(t.procs.indexOf(t.front));
        const total = t.procs.reduce((sum, _p, i) => sum + per(i), 0);
        add(t.label, `${kind}: gateway CPU ms/request`, gateway);
        // The first gateway process alone: with GATEWAY_PROCESSES > 1 that is the cluster primary.
        add(t.label, `${kind}: of which first process (primary) CPU ms/request`, (frontAfter - frontBefore) / Math.max(1, paced.ok));
        add(t.label, `${kind}: path CPU ms/request`, total);
        process.stderr.write(`round ${r + 1} ${kind} ${t.label}: ${paced.ok}/${paced.sent} ok; gateway ${fmt(gateway, 3)}, path ${fmt(total, 3)} CPU ms/request\n`);
      }
      for (const t of order) {
        const sat = await saturate(spec(t, stream), connections, satSeconds);
        add(t.label, `${kind}: saturation req/s`, sat.rps);
        add(t.label, `${kind}: saturation p50 ms`, sat.p50Ms);
        process.stderr.write(`round ${r + 1} ${kind} ${t.label}: ${fmt(sat.rps, 0)} req/s at saturation, p50 ${sat.p50Ms} ms${sat.failure ? ` (${sat.failure})` : ''}\n`);
      }
    }
  }
  const measures = [...(figures.values().next().value?.keys() ?? [])];
  const labels = [...figures.keys()];
  const lines = [
    `GATEWAY_PROCESSES: medians of ${rounds} rounds; paced ${rate} req/s for ${seconds} s, saturation ${connections} connections for ${satSeconds} s; 16 tokens; ` +
      `${os.availableParallelism()} cores; load average at start ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}, at end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`,
    '',
    `| measure | ${labels.join(' | ')} |`,
    `|---|${labels.map(() => '---:').join('|')}|`,
    ...measures.map((m) => `| ${m} | ${labels.map((l) => fmt(median(figures.get(l)?.get(m) ?? []), m.includes('CPU') ? 3 : 0)).join(' | ')} |`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  for (const t of targets.reverse()) await t.stop().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
process.exit(0);
