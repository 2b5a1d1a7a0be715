/**
 * The latency of one request on an otherwise idle path: sequential requests (one at a time, one
 * keep-alive connection) against the mock upstream itself and against our full path in front of it
 * (gateway → auth cache, quota lease → inference worker, openai engine → mock, as `npm start` runs
 * them), optionally against a stack of another checkout in the same run. The figure behind the
 * "TTFT overhead, 200 sequential" target, with the method made fair and repeatable:
 *
 * - Equal warm-up for every target (the mock included): `--warmup` requests, four at a time, half
 *   streaming, before the first round, so no target is measured while its code is still being
 *   compiled (a cold gateway needs well over a thousand requests before its TTFT settles).
 * - Rounds alternate the order of the targets; each round sends `--requests` streaming requests
 *   (time to the first `data:` byte, and to the end) then as many non-streaming ones (to the end),
 *   back to back. Per round each target's percentiles; printed: the median over rounds, ours minus
 *   the mock (per round, then the median), ours against the baseline.
 * - Besides times, which depend on what else the host runs, the CPU time (user + system,
 *   /proc/<pid>/stat) our processes spent per request in the measured rounds.
 *
 *   node --import tsx bench/critical-path.ts [--rounds=5] [--requests=300] [--warmup=3000]
 *       [--baseline=<checkout of another commit>]
 *
 * Prints markdown tables; writes nothing outside a temporary directory.
 */
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sendOnce } from './lib/http-load.js';
import { ChildProcesses, cpuMs, type Proc } from './lib/procs.js';
import { fmt, median, percentile, ratio, signed } from './lib/stats.js';
import { spec, startMock, startOurPlatform, validate, writeBenchTiers, type BenchHost, type Target } from './lib/targets.js';
import { openaiEngine } from './gateway/context.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    requests: { type: 'string', default: '300' },
    warmup: { type: 'string', default: '3000' },
    baseline: { type: 'string' },
  },
});
const rounds = Number(values.rounds);
const requests = Number(values.requests);
const warmup = Number(values.warmup);
for (const [name, v] of Object.entries({ rounds, requests })) {
  if (!(Number.isInteger(v) && v > 0)) throw new Error(`--${name} must be a positive integer`);
}
if (!(Number.isInteger(warmup) && warmup >= 0)) throw new Error('--warmup must be a whole number');

const root = path.resolve(import.meta.dirname, '..');
const workDir = mkdtempSync(path.join(os.tmpdir(), 'xero-critical-path-'));
const host: BenchHost = { root, children: new ChildProcesses() };
const stops: Array<() => Promise<void>> = [];

interface Stack {
  label: string;
  target: Target;
  /** Our processes (empty for the mock). */
  procs: Proc[];
}

/** One round of one target: percentiles of each measure, CPU per request. */
type RoundFigures = Record<string, number>;

const MEASURES = ['stream TTFT p50', 'stream TTFT p90', 'stream total p50', 'JSON total p50', 'JSON total p90'] as const;

async function sequential(target: Target, stream: boolean, count: number): Promise<{ first: number[]; total: number[] }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const first: number[] = [];
  const total: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const r = await sendOnce(spec(target, stream), agent, performance.now(), 10_000);
      if (r.status !== 200) throw new Error(`${target.label}: ${r.error ?? `HTTP ${r.status}`}`);
      if (r.firstDataMs !== undefined) first.push(r.firstDataMs);
      total.push(r.totalMs);
    }
  } finally {
    agent.destroy();
  }
  return { first, total };
}

/** `count` requests, four at a time, every other one streaming. */
async function warm(target: Target, count: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  try {
    for (let i = 0; i < count; i += 4) {
      await Promise.all([0, 1, 2, 3].map((j) => sendOnce(spec(target, (i + j) % 2 === 0), agent, performance.now(), 10_000)));
    }
  } finally {
    agent.destroy();
  }
}

async function measure(stack: Stack): Promise<RoundFigures> {
  const cpuBefore = stack.procs.map((p) => cpuMs(p.pid));
  const s = await sequential(stack.target, true, requests);
  const j = await sequential(stack.target, false, requests);
  const cpu = stack.procs.reduce((sum, p, i) => sum + cpuMs(p.pid) - (cpuBefore[i] ?? Number.NaN), 0);
  return {
    'stream TTFT p50': percentile(s.first, 50),
    'stream TTFT p90': percentile(s.first, 90),
    'stream total p50': percentile(s.total, 50),
    'JSON total p50': percentile(j.total, 50),
    'JSON total p90': percentile(j.total, 90),
    'CPU ms per request': stack.procs.length > 0 ? cpu / (2 * requests) : Number.NaN,
  };
}

try {
  const load = os.loadavg();
  const mock = await startMock(host, { tokens: 16 });
  stops.push(() => mock.target.stop());
  const inferenceEnv = openaiEngine(mock.url);
  const ourStack = async (stackRoot: string, label: string): Promise<Stack> => {
    const dir = mkdtempSync(path.join(workDir, 'stack-'));
    const ours = await startOurPlatform({
      host: { root: stackRoot, children: host.children },
      dir,
      tiersFile: writeBenchTiers(root, dir),
      inferenceEnv,
      capacity: 256,
      label,
    });
    stops.push(() => ours.target.stop());
    return { label, target: ours.target, procs: ours.target.procs };
  };
  const stacks: Stack[] = [{ label: 'mock direct', target: mock.target, procs: [] }, await ourStack(root, 'ours')];
  if (values.baseline !== undefined) {
    const baseRoot = path.resolve(values.baseline);
    stacks.push(await ourStack(baseRoot, `baseline (${path.basename(baseRoot)})`));
  }
  for (const s of stacks) await validate(s.target);
  process.stderr.write(`warming up every target with ${warmup} requests\n`);
  for (const s of stacks) await warm(s.target, warmup);

  const figures = new Map<string, RoundFigures[]>(stacks.map((s) => [s.label, []]));
  for (let r = 0; r < rounds; r++) {
    const order = [...stacks.slice(r % stacks.length), ...stacks.slice(0, r % stacks.length)];
    for (const s of order) {
      const f = await measure(s);
      figures.get(s.label)?.push(f);
      process.stderr.write(
        `round ${r + 1}/${rounds} ${s.label.padEnd(28)} ${MEASURES.map((m) => `${m} ${fmt(f[m] ?? Number.NaN, 2)}`).join(', ')}\n`,
      );
    }
  }

  const med = (label: string, m: string): number => median((figures.get(label) ?? []).map((f) => f[m] ?? Number.NaN));
  /** Median over rounds of (stack − mock) in the same round. */
  const overhead = (label: string, m: string): number => {
    const mine = figures.get(label) ?? [];
    const direct = figures.get('mock direct') ?? [];
    return median(mine.map((f, i) => (f[m] ?? Number.NaN) - (direct[i]?.[m] ?? Number.NaN)));
  };
  const ours = stacks.slice(1);
  const after = os.loadavg();
  console.log(
    `\n${rounds} rounds × ${requests} sequential streaming + ${requests} non-streaming requests per target, after ${warmup} warm-up requests each; ` +
      `1-minute load average ${fmt(load[0] ?? Number.NaN, 2)} → ${fmt(after[0] ?? Number.NaN, 2)}\n`,
  );
  console.log(`| ms (median of rounds) | ${stacks.map((s) => s.label).join(' | ')} | ${ours.map((s) => `${s.label} − mock`).join(' | ')} |`);
  console.log(`|---|${stacks.map(() => '---:').join('|')}|${ours.map(() => '---:').join('|')}|`);
  for (const m of [...MEASURES, 'CPU ms per request']) {
    const cells = stacks.map((s) => fmt(med(s.label, m), m.startsWith('CPU') ? 3 : 2));
    const over = ours.map((s) => (m.startsWith('CPU') ? '' : signed(overhead(s.label, m), 2)));
    console.log(`| ${m} | ${cells.join(' | ')} | ${over.join(' | ')} |`);
  }
  if (ours.length === 2) {
    const [now, base] = ours as [Stack, Stack];
    console.log(`\nours / baseline (medians of rounds):`);
    const mine = figures.get(now.label) ?? [];
    const theirs = figures.get(base.label) ?? [];
    for (const m of [...MEASURES, 'CPU ms per request']) {
      const extra = m.startsWith('CPU') ? '' : `; overhead vs mock ${signed(overhead(now.label, m), 2)} vs ${signed(overhead(base.label, m), 2)} ms`;
      // Same-round comparison: on a busy host the spread between rounds exceeds small differences.
      const lower = mine.filter((f, i) => (f[m] ?? Number.NaN) < (theirs[i]?.[m] ?? Number.NaN)).length;
      console.log(
        `- ${m}: ${fmt(med(now.label, m), 3)} vs ${fmt(med(base.label, m), 3)} → ${ratio(med(now.label, m), med(base.label, m))}${extra}; ours lower in ${lower} of ${mine.length} rounds`,
      );
    }
  }
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  rmSync(workDir, { recursive: true, force: true });
}
