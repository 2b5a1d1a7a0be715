/**
 * The latency our full path adds over calling the upstream directly, at a fixed request rate:
 * paced open-loop load (bench/lib/http-load.ts pacedLoad, latency from each request's scheduled
 * send time) against the mock upstream itself and against ours in front of it (gateway → auth,
 * quota → inference worker, openai engine → mock, as `npm start` runs them), alternating, several
 * rounds. Per round, each percentile of ours minus the same percentile of the direct run; the
 * table shows the median over rounds.
 *
 *   node --import tsx bench/added-latency.ts [--rate=200] [--seconds=10] [--rounds=5]
 *       [--stream] [--baseline=<checkout of another commit>] [--probe] [--node-options="…"]
 *
 * --stream also measures streaming requests (time to the first `data:` byte and to the end).
 * --baseline: a second stack of ours from that checkout's dist/ (built there), in the same rounds,
 *   alternating: old vs new under the same host load.
 * --probe: every process of ours reports, per run, its event-loop delay (perf_hooks histogram,
 *   10 ms resolution, as prom-client uses) and its GC pauses (count, total, max by kind), to attribute the tail.
 * --node-options: extra Node/V8 flags (space-separated) for every process of the measured stack (not the
 *   baseline), to try V8 or runtime flags A/B against --baseline=<this checkout>. Repeat it for one
 *   stack per setting, all in the same rounds; `--node-options=` (empty) is ours without flags.
 * Prints markdown tables; writes nothing outside a temporary directory.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { pacedLoad, type PacedResult } from './lib/http-load.js';
import type { Proc } from './lib/procs.js';
import { ChildProcesses } from './lib/procs.js';
import { fmt, median, percentile, signed } from './lib/stats.js';
import { spec, startMock, startOurPlatform, validate, writeBenchTiers, type BenchHost, type Target } from './lib/targets.js';
import { openaiEngine } from './gateway/context.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '5' },
    stream: { type: 'boolean', default: false },
    baseline: { type: 'string' },
    probe: { type: 'boolean', default: false },
    'node-options': { type: 'string', multiple: true },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
for (const [name, v] of Object.entries({ rate, seconds, rounds })) {
  if (!(Number.isFinite(v) && v > 0)) throw new Error(`--${name} must be a positive number`);
}
const root = path.resolve(import.meta.dirname, '..');
const workDir = mkdtempSync(path.join(os.tmpdir(), 'xero-latency-'));
const host: BenchHost = { root, children: new ChildProcesses() };
const stops: Array<() => Promise<void>> = [];
const load = os.loadavg()[0] ?? Number.NaN;

/**
 * Preload for --probe: on SIGUSR2 the process prints one `LATPROBE {json}` line with what it saw
 * since the previous signal (event-loop delay percentiles, GC pauses) and starts over.
 */
const PROBE = `
import { monitorEventLoopDelay, PerformanceObserver, constants } from 'node:perf_hooks';
import v8 from 'node:v8';
const h = monitorEventLoopDelay({ resolution: 10 });
h.enable();
const kinds = { [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge', [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental', [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb' };
let gc = {};
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const k = kinds[e.detail?.kind] ?? String(e.detail?.kind);
    const g = (gc[k] ??= { n: 0, totalMs: 0, maxMs: 0, over2: 0 });
    g.n += 1; g.totalMs += e.duration; g.maxMs = Math.max(g.maxMs, e.duration); if (e.duration > 2) g.over2 += 1;
  }
}).observe({ entryTypes: ['gc'] });
process.on('SIGUSR2', () => {
  const ms = (ns) => Math.round(ns / 1e4) / 100;
  process.stderr.write('LATPROBE ' + JSON.stringify({ newSpaceMB: Math.round((v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0) / 1e5) / 10, loop: { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), n: h.count }, gc }) + '\\n');
  h.reset(); gc = {};
});
`;

interface ProbeReport {
  newSpaceMB: number;
  loop: { p50: number; p99: number; max: number; n: number };
  gc: Record<string, { n: number; totalMs: number; maxMs: number; over2: number }>;
}

/** Signals every process and reads back its newest LATPROBE line. */
async function readProbes(procs: Proc[]): Promise<Map<string, ProbeReport>> {
  const before = new Map(procs.map((p) => [p.name, p.output().lastIndexOf('LATPROBE ')]));
  for (const p of procs) p.child.kill('SIGUSR2');
  const out = new Map<string, ProbeReport>();
  for (let i = 0; i < 40 && out.size < procs.length; i++) {
    await sleep(25);
    for (const p of procs) {
      const text = p.output();
      const at = text.lastIndexOf('LATPROBE ');
      if (at < 0 || at === before.get(p.name)) continue;
      const line = text.slice(at + 9, text.indexOf('\n', at) < 0 ? undefined : text.indexOf('\n', at));
      try {
        out.set(p.name, JSON.parse(line) as ProbeReport);
      } catch {
        /* incomplete line: next poll */
      }
    }
  }
  return out;
}

const PCTS = [50, 90, 99, 100] as const;
const pctName = (p: number): string => (p === 100 ? 'max' : `p${p}`);

try {
  const mock = await startMock(host, { tokens: 16 });
  stops.push(() => mock.target.stop());
  const probeFile = path.join(workDir, 'probe.mjs');
  writeFileSync(probeFile, PROBE);
  const probeEnv: Record<string, string> = values.probe ? { NODE_OPTIONS: `--import=${probeFile}` } : {};
  const inferenceEnv = openaiEngine(mock.url);
  const stack = async (stackRoot: string, label: string, extra: string | undefined): Promise<{ target: Target; procs: Proc[] }> => {
    const dir = mkdtempSync(path.join(workDir, 'stack-'));
    const opts = probeEnv;
    const ours = await startOurPlatform({
      host: { root: stackRoot, children: host.children },
      dir,
      tiersFile: writeBenchTiers(root, dir),
      inferenceEnv,
      capacity: 256,
      label,
      nodeArgs: extra?.split(' ').filter((a) => a !== ''),
      env: { gateway: opts, auth: opts, quota: opts, inference: opts },
    });
    stops.push(() => ours.target.stop());
    return { target: ours.target, procs: ours.target.procs };
  };
  const compared = [];
  for (const flags of values['node-options'] ?? ['']) compared.push(await stack(root, flags ? `ours (${flags})` : 'ours', flags));
  if (values.baseline !== undefined) {
    const baseRoot = path.resolve(values.baseline);
    compared.push(await stack(baseRoot, `baseline (${path.basename(baseRoot)})`, undefined));
  }
  const kinds = values.stream ? [false, true] : [false];
  // Warm-up: JIT, connection pools, the gateway's view of the worker.
  for (const c of compared) await validate(c.target);
  for (const stream of kinds) {
    await pacedLoad(spec(mock.target, stream), { rate, durationMs: 2_000 });
    for (const c of compared) await pacedLoad(spec(c.target, stream), { rate, durationMs: 3_000 });
  }
  if (values.probe) for (const c of compared) await readProbes(c.procs);

  // figures[label][measure] = one value per round
  const figures = new Map<string, Map<string, number[]>>();
  const add = (label: string, measure: string, value: number): void => {
    const m = figures.get(label) ?? new Map<string, number[]>();
    figures.set(label, m);
    m.set(measure, [...(m.get(measure) ?? []), value]);
  };
  const waitIdle = async (t: Target): Promise<void> => {
    for (let i = 0; i < 20 && t.ready && !(await t.ready()); i++) await sleep(100);
  };
  const run = async (t: Target, stream: boolean): Promise<PacedResult> => {
    await waitIdle(t);
    const r = await pacedLoad(spec(t, stream), { rate, durationMs: seconds * 1000 });
    if (r.ok !== r.sent) process.stderr.write(`  ${t.label}: ${r.sent - r.ok} of ${r.sent} failed (${r.firstError ?? ''})\n`);
    return r;
  };
  for (let r = 0; r < rounds; r++) {
    for (const stream of kinds) {
      const kind = stream ? 'stream' : 'non-stream';
      const order = r % 2 === 0 ? compared : [...compared].reverse();
      const direct = await run(mock.target, stream);
      const line: string[] = [];
      for (const c of order) {
        const res = await run(c.target, stream);
        for (const p of PCTS) {
          const added = percentile(res.latenciesMs, p) - percentile(direct.latenciesMs, p);
          add(c.target.label, `${kind} ${pctName(p)}`, added);
          if (stream) add(c.target.label, `${kind} TTFT ${pctName(p)}`, percentile(res.firstDataMs, p) - percentile(direct.firstDataMs, p));
        }
        line.push(
          `${c.target.label} p50 ${signed(percentile(res.latenciesMs, 50) - percentile(direct.latenciesMs, 50), 2)} p99 ${signed(percentile(res.latenciesMs, 99) - percentile(direct.latenciesMs, 99), 2)}`,
        );
        if (values.probe) {
          for (const [name, rep] of await readProbes(c.procs)) {
            add(c.target.label, `${kind} ${name} loop delay p99`, rep.loop.p99);
            add(c.target.label, `${kind} ${name} loop delay max`, rep.loop.max);
            add(c.target.label, `${kind} ${name} new space MB`, rep.newSpaceMB);
            const gcs = Object.values(rep.gc);
            add(c.target.label, `${kind} ${name} GC pauses/s`, gcs.reduce((s, g) => s + g.n, 0) / seconds);
            add(c.target.label, `${kind} ${name} GC ms/s`, gcs.reduce((s, g) => s + g.totalMs, 0) / seconds);
            add(c.target.label, `${kind} ${name} GC max ms`, Math.max(0, ...gcs.map((g) => g.maxMs)));
            add(c.target.label, `${kind} ${name} GC >2ms`, gcs.reduce((s, g) => s + g.over2, 0));
          }
        }
      }
      add('mock direct', `${kind} p50`, percentile(direct.latenciesMs, 50));
      add('mock direct', `${kind} p99`, percentile(direct.latenciesMs, 99));
      process.stderr.write(
        `round ${r + 1} ${kind}: direct p50 ${fmt(percentile(direct.latenciesMs, 50), 2)} p99 ${fmt(percentile(direct.latenciesMs, 99), 2)}; ${line.join('; ')}\n`,
      );
    }
  }
  const lines = [
    `Added latency over the mock called directly (ms, median of ${rounds} rounds), ${rate} req/s for ${seconds} s per run, 16 tokens; load average at start ${load.toFixed(2)}`,
    '',
    '| target | measure | ms |',
    '|---|---|---:|',
  ];
  for (const [label, m] of figures) for (const [what, v] of m) lines.push(`| ${label} | ${what} | ${fmt(median(v), 2)} |`);
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  rmSync(workDir, { recursive: true, force: true });
}
process.exit(0);
