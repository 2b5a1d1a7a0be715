/**
 * CPU per request of every process on the path, at a moderate fixed rate (not saturation): the
 * figure that stays comparable when other work shares the host, since a process's CPU time per
 * request hardly depends on how long it waited for a core. Ours (gateway, auth, quota, inference
 * worker, as `npm start` runs them) and Portkey, both in front of the same mock upstream,
 * alternating, several rounds, medians printed.
 *
 *   node --import tsx bench/cpu-per-request.ts [--rate=50] [--seconds=6] [--rounds=3]
 *       [--baseline=<checkout of another commit>] [--no-portkey]
 *
 * With --baseline, a second stack of ours runs from that checkout's dist/ (built there; its own
 * node_modules), measured in the same rounds, alternating: old vs new under the same host load.
 * Prints a markdown table; writes nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pacedLoad } from './lib/http-load.js';
import { ChildProcesses, cpuMs } from './lib/procs.js';
import { fmt, median } from './lib/stats.js';
import { spec, startMock, startOurPlatform, startPortkey, validate, writeBenchTiers, type Target } from './lib/targets.js';
import { openaiEngine } from './gateway/context.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '3' },
    baseline: { type: 'string' },
    'no-portkey': { type: 'boolean', default: false },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const root = path.resolve(import.meta.dirname, '..');
const workDir = mkdtempSync(path.join(os.tmpdir(), 'xero-cpu-'));
const host = { root, children: new ChildProcesses() };
const targets: Target[] = [];
const load = os.loadavg()[0] ?? Number.NaN;
try {
  const mock = await startMock(host, { tokens: 16 });
  targets.push(mock.target);
  const ours = await startOurPlatform({
    host,
    dir: workDir,
    tiersFile: writeBenchTiers(root, workDir),
    inferenceEnv: openaiEngine(mock.url),
    capacity: 256,
  });
  targets.push(ours.target);
  const compared: Target[] = [ours.target];
  if (values.baseline !== undefined) {
    const baselineDir = mkdtempSync(path.join(os.tmpdir(), 'xero-cpu-base-'));
    const baseRoot = path.resolve(values.baseline);
    const baseline = await startOurPlatform({
      host: { root: baseRoot, children: host.children },
      dir: baselineDir,
      tiersFile: writeBenchTiers(root, baselineDir),
      inferenceEnv: openaiEngine(mock.url),
      capacity: 256,
      label: `baseline (${path.basename(baseRoot)})`,
    });
    const stopBaseline = async (): Promise<void> => {
      await baseline.target.stop();
      rmSync(baselineDir, { recursive: true, force: true });
    };
    targets.push({ ...baseline.target, stop: stopBaseline });
    compared.push(baseline.target);
  }
  if (!values['no-portkey']) {
    const portkey = await startPortkey(host, mock.url);
    targets.push(portkey);
    compared.push(portkey);
  }
  for (const t of compared) {
    await validate(t);
    await pacedLoad(spec(t, false), { rate, durationMs: 2_000 });
    await pacedLoad(spec(t, true), { rate, durationMs: 2_000 });
  }
  // figures[target label][kind][process] = ms per request, one value per round
  const figures = new Map<string, Map<string, number[]>>();
  const add = (key: string, value: number): void => {
    const [label = '', rest = ''] = key.split('|');
    const m = figures.get(label) ?? new Map<string, number[]>();
    figures.set(label, m);
    m.set(rest, [...(m.get(rest) ?? []), value]);
  };
  for (let r = 0; r < rounds; r++) {
    for (const stream of [false, true]) {
      for (const t of r % 2 === 0 ? compared : [...compared].reverse()) {
        const before = t.procs.map((p) => cpuMs(p.pid));
        const result = await pacedLoad(spec(t, stream), { rate, durationMs: seconds * 1000 });
        const after = t.procs.map((p) => cpuMs(p.pid));
        const kind = stream ? 'stream' : 'non-stream';
        let total = 0;
        const each: string[] = [];
        t.procs.forEach((p, i) => {
          const ms = ((after[i] ?? 0) - (before[i] ?? 0)) / Math.max(1, result.ok);
          total += ms;
          each.push(`${p.name} ${fmt(ms, 3)}`);
          add(`${t.label}|${kind} ${p.name}`, ms);
        });
        add(`${t.label}|${kind} total`, total);
        process.stderr.write(`round ${r + 1} ${kind} ${t.label}: ${result.ok}/${result.sent} ok, ${fmt(total, 3)} ms CPU per request (${each.join(', ')})\n`);
      }
    }
  }
  const lines = [
    `CPU ms per request (median of ${rounds} rounds), ${rate} req/s for ${seconds} s per run, 16 tokens; load average at start ${load.toFixed(2)}`,
    '',
    '| target | measure | ms/request |',
    '|---|---|---:|',
  ];
  for (const [label, m] of figures) for (const [what, v] of m) lines.push(`| ${label} | ${what} | ${fmt(median(v), 3)} |`);
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  for (const t of targets.reverse()) await t.stop().catch(() => undefined);
  rmSync(workDir, { recursive: true, force: true });
}
process.exit(0);
