/**
 * `npm run bench` — issue 8: the platform's gateway path against the mock upstream directly and
 * against the Portkey gateway in front of the same mock. Every target runs as real separate
 * processes on 127.0.0.1; targets alternate within each measurement; medians over rounds.
 *
 *   npm run bench                    # full run (~5 min on 2 cores), writes docs/BENCHMARKS.md
 *   npm run bench -- --profile       # + a --cpu-prof run of the gateway under load, summarised
 *   npm run bench -- --profile-only  # only the profile run
 *   flags: --rounds=3 --sat-seconds=5 --rate-seconds=4 --idle-streams=1000 --no-write
 *
 * No timing assertions: this prints figures (README "bench/").
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { AUTOCANNON_VERSION, saturate } from './lib/autocannon.js';
import { analyzeCpuProfile, formatProfileMarkdown, loadCpuProfile, type ProfileSummary, type WatchItem } from './lib/cpuprofile.js';
import { holdStreams, pacedLoad, ttftProbe } from './lib/http-load.js';
import { cpuMs, rssKb, stopProcess, waitUntil } from './lib/procs.js';
import { fmt, median, percentile, ratio, sum } from './lib/stats.js';
import {
  BODY,
  portkeyVersion,
  spec,
  startMock,
  startOurPlatform,
  startPortkey,
  validate,
  writeBenchTiers,
  type OurPlatform,
  type Target,
  type TargetKey,
} from './lib/targets.js';

/** Our worker's engine for the gateway comparison: the `openai` engine in front of the mock. */
const openaiEngine = (url: string): Record<string, string> => ({
  INFERENCE_ENGINE: 'openai',
  OPENAI_UPSTREAM_URL: url,
  OPENAI_UPSTREAM_MODEL: 'mock',
});

const root = path.resolve(import.meta.dirname, '..');
const { values: flags } = parseArgs({
  options: {
    profile: { type: 'boolean', default: false },
    'profile-only': { type: 'boolean', default: false },
    rounds: { type: 'string', default: '3' },
    'sat-seconds': { type: 'string', default: '5' },
    'rate-seconds': { type: 'string', default: '4' },
    'idle-streams': { type: 'string', default: '1000' },
    connections: { type: 'string', default: '32' },
    'no-write': { type: 'boolean', default: false },
  },
  allowPositionals: false,
});
const intFlag = (name: string, v: string | undefined, min: number, max: number): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in ${min}..${max}`);
  return n;
};
const ROUNDS = intFlag('rounds', flags.rounds, 1, 10);
const SAT_SECONDS = intFlag('sat-seconds', flags['sat-seconds'], 1, 60);
const RATE_SECONDS = intFlag('rate-seconds', flags['rate-seconds'], 1, 60);
const IDLE_STREAMS = intFlag('idle-streams', flags['idle-streams'], 1, 5000);
const CONNECTIONS = intFlag('connections', flags.connections, 1, 1024);
const RATES = [200, 500] as const;
const PROFILE = flags.profile || flags['profile-only'];
const MAIN = !flags['profile-only'];
const TTFT = { sequential: 200, concurrent: 200, concurrency: 16 };
const PROFILE_SECONDS = 8;
/** Hard ceiling for the whole run: whatever happens, exit (children are killed by the exit hook). */
const WATCHDOG_MS = 15 * 60_000;

const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
const t0 = Date.now();
const log = (msg: string): void => {
  process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
};

process.on('SIGINT', () => {
  log('interrupted; stopping child processes');
  process.exit(130);
});
process.on('SIGTERM', () => process.exit(143));
setTimeout(() => {
  process.stderr.write(`benchmark exceeded ${WATCHDOG_MS / 60_000} min; aborting\n`);
  process.exit(2);
}, WATCHDOG_MS).unref();

// ---------------------------------------------------------------------------------------------
// Results store: per target, per metric, one value per round.
// ---------------------------------------------------------------------------------------------

type Metrics = Map<string, number[]>;
const results = new Map<TargetKey, Metrics>([
  ['mock', new Map()],
  ['ours', new Map()],
  ['portkey', new Map()],
]);
const failures = new Map<TargetKey, number>([
  ['mock', 0],
  ['ours', 0],
  ['portkey', 0],
]);
/** Failures per target and measurement, with the first error seen. */
const failureLog = new Map<string, { n: number; error: string | undefined }>();
/** 1-minute load average when the run started and ended (other work on the host shows here). */
const loadAverages: number[] = [os.loadavg()[0] ?? Number.NaN];
const phaseErrors: string[] = [];
/** Times our gateway lost its gRPC connection to the worker during the main phase. */
let workerLostCount = 0;

function record(key: TargetKey, metric: string, value: number): void {
  const m = results.get(key);
  if (!m) return;
  const list = m.get(metric) ?? [];
  list.push(value);
  m.set(metric, list);
}
function fail(target: Target, n: number, what: string, error?: string): void {
  if (n <= 0) return;
  failures.set(target.key, (failures.get(target.key) ?? 0) + n);
  const key = `${target.label} — ${what}`;
  const entry = failureLog.get(key) ?? { n: 0, error };
  entry.n += n;
  failureLog.set(key, entry);
}
const med = (key: TargetKey, metric: string): number => median(results.get(key)?.get(metric) ?? []);

// ---------------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------------

interface Scenario {
  id: string;
  run(t: Target, round: number): Promise<string>;
}

function cpuOf(t: Target): number[] {
  return t.procs.map((p) => cpuMs(p.pid));
}

function saturation(stream: boolean): Scenario {
  const id = stream ? 'sat-sse' : 'sat-json';
  return {
    id,
    async run(t) {
      const before = cpuOf(t);
      const r = await saturate(spec(t, stream), CONNECTIONS, SAT_SECONDS);
      const after = cpuOf(t);
      record(t.key, `${id}.rps`, r.rps);
      record(t.key, `${id}.p50`, r.p50Ms);
      record(t.key, `${id}.p99`, r.p99Ms);
      const perProc = t.procs.map((p, i) => ({ name: p.name, ms: (after[i] ?? Number.NaN) - (before[i] ?? Number.NaN) }));
      if (r.ok > 0 && t.procs.length > 0) {
        record(t.key, `${id}.cpu`, sum(perProc.map((p) => p.ms)) / r.ok);
        for (const p of perProc) record(t.key, `${id}.cpu.${p.name}`, p.ms / r.ok);
      }
      fail(t, r.failed, id, r.failure);
      return `${fmt(r.rps, 0)} req/s, p50 ${fmt(r.p50Ms, 0)} ms, p99 ${fmt(r.p99Ms, 0)} ms${r.failed ? `, ${r.failed} FAILED (${r.failure ?? ''})` : ''}`;
    },
  };
}

function paced(rate: number, stream: boolean): Scenario {
  const id = `rate${rate}-${stream ? 'sse' : 'json'}`;
  return {
    id,
    async run(t) {
      const r = await pacedLoad(spec(t, stream), { rate, durationMs: RATE_SECONDS * 1000 });
      record(t.key, `${id}.p50`, percentile(r.latenciesMs, 50));
      record(t.key, `${id}.p99`, percentile(r.latenciesMs, 99));
      record(t.key, `${id}.achieved`, r.achievedRps);
      if (stream) {
        record(t.key, `${id}.ttft50`, percentile(r.firstDataMs, 50));
        record(t.key, `${id}.ttft99`, percentile(r.firstDataMs, 99));
      }
      fail(t, r.sent - r.ok, id, r.firstError);
      return (
        `achieved ${fmt(r.achievedRps, 0)} req/s, p50 ${fmt(percentile(r.latenciesMs, 50), 2)} ms, p99 ${fmt(percentile(r.latenciesMs, 99), 2)} ms` +
        (stream ? `, TTFT p50 ${fmt(percentile(r.firstDataMs, 50), 2)} ms` : '') +
        (r.sent - r.ok ? `, ${r.sent - r.ok} FAILED (${r.firstError ?? ''})` : '')
      );
    },
  };
}

const ttft: Scenario = {
  id: 'ttft',
  async run(t) {
    const r = await ttftProbe(spec(t, true), TTFT);
    record(t.key, 'ttft.seq50', percentile(r.sequentialMs, 50));
    record(t.key, 'ttft.seq99', percentile(r.sequentialMs, 99));
    record(t.key, 'ttft.conc50', percentile(r.concurrentMs, 50));
    record(t.key, 'ttft.conc99', percentile(r.concurrentMs, 99));
    fail(t, r.failures, 'ttft', r.firstError);
    return `sequential p50 ${fmt(percentile(r.sequentialMs, 50), 2)} ms / p99 ${fmt(percentile(r.sequentialMs, 99), 2)} ms; concurrent(${TTFT.concurrency}) p50 ${fmt(percentile(r.concurrentMs, 50), 2)} / p99 ${fmt(percentile(r.concurrentMs, 99), 2)} ms`;
  },
};

const SCENARIOS: Scenario[] = [
  saturation(false),
  saturation(true),
  ...RATES.flatMap((rate) => [paced(rate, false), paced(rate, true)]),
  ttft,
];

interface MemoryResult {
  label: string;
  key: TargetKey;
  held: number;
  failed: number;
  /** Front process RSS in KiB: idle, with the streams held, after release. */
  idle: number;
  loaded: number;
  after: number;
  /** ours: every process on the path (gateway, auth, quota, worker). */
  pathIdle?: number;
  pathLoaded?: number;
  breakdown?: string;
}

async function memoryOf(t: Target): Promise<MemoryResult> {
  const all = [t.front, ...t.procs.filter((p) => p !== t.front)];
  const rssAll = (): number => sum(all.map((p) => rssKb(p.pid)));
  // Warm the streaming path on this fresh process with a few streams, then let it settle.
  const warm = await holdStreams(spec(t, true), 50, { batch: 50 });
  warm.release();
  await sleep(1_500);
  const idle = rssKb(t.front.pid);
  const pathIdle = rssAll();
  const held = await holdStreams(spec(t, true), IDLE_STREAMS, { batch: 100, budgetMs: 90_000 });
  let loaded = Number.NaN;
  let pathLoaded = Number.NaN;
  let breakdown = '';
  try {
    await sleep(1_500);
    loaded = rssKb(t.front.pid);
    pathLoaded = rssAll();
    breakdown = all.map((p) => `${p.name} ${fmt(rssKb(p.pid) / 1024, 0)} MiB`).join(', ');
  } finally {
    held.release();
  }
  await sleep(1_500);
  if (held.failed > 0) fail(t, held.failed, 'idle streams', held.firstError);
  const out: MemoryResult = { label: t.label, key: t.key, held: held.held, failed: held.failed, idle, loaded, after: rssKb(t.front.pid) };
  if (t.procs.length > 1) {
    out.pathIdle = pathIdle;
    out.pathLoaded = pathLoaded;
    out.breakdown = breakdown;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------------

const workDir = mkdtempSync(path.join(os.tmpdir(), 'xero-bench-'));
const tiersFile = writeBenchTiers(root, workDir);
const running: Target[] = [];
const started = (t: Target): Target => {
  running.push(t);
  return t;
};
const stopTarget = async (t: Target): Promise<void> => {
  const i = running.indexOf(t);
  if (i >= 0) running.splice(i, 1);
  await t.stop();
};

interface Crash {
  process: string;
  exit: string;
  during: string;
  tail: string;
}
/** Processes of ours that died during the main phase (the stack is restarted and the run goes on). */
const crashes: Crash[] = [];

async function mainPhase(): Promise<void> {
  log('starting the mock upstream, our platform (4 processes) and Portkey');
  const mock = await startMock(root, { tokens: 16 });
  started(mock.target);
  let stacks = 0;
  const startOurs = async (): Promise<OurPlatform> => {
    const dir = path.join(workDir, `ours-${(stacks += 1)}`);
    mkdirSync(dir);
    const platform = await startOurPlatform({ root, dir, tiersFile, inferenceEnv: openaiEngine(mock.url), capacity: 256 });
    started(platform.target);
    return platform;
  };
  let ours = await startOurs();
  const portkey = await startPortkey(root, mock.url);
  started(portkey);
  const current = (key: TargetKey): Target => (key === 'mock' ? mock.target : key === 'ours' ? ours.target : portkey);
  const keys: TargetKey[] = ['mock', 'ours', 'portkey'];
  for (const k of keys) await validate(current(k));
  log('all three targets answer; warming up');
  for (const k of keys) {
    await saturate(spec(current(k), false), CONNECTIONS, 2);
    await saturate(spec(current(k), true), CONNECTIONS, 1);
  }
  let previous = 'warm-up';
  for (let round = 0; round < ROUNDS; round++) {
    for (const [si, scenario] of SCENARIOS.entries()) {
      // Alternate: every scenario rotates which target goes first.
      const shift = (round + si) % keys.length;
      for (const k of [...keys.slice(shift), ...keys.slice(0, shift)]) {
        let t = current(k);
        const dead = [...t.procs, t.front].find((p) => !p.alive());
        if (dead) {
          const exit = String(await dead.exited);
          // Per-request error log lines drown the interesting part: keep the rest.
          const lines = dead.output().split('\n').filter((l) => l.trim() !== '' && !l.includes('"msg":"request errored"'));
          const tail = lines.slice(-25).join('\n').slice(-5000);
          if (k !== 'ours' || crashes.length >= 3) throw new Error(`${dead.name} died during the benchmark (exit ${exit}):\n${tail}`);
          crashes.push({ process: dead.name, exit, during: previous, tail });
          log(`!! ${dead.name} of ours died (exit ${exit}) during/after ${previous}; restarting our stack. Last output:\n${tail}`);
          workerLostCount += ours.workerLost();
          await stopTarget(ours.target);
          ours = await startOurs();
          t = ours.target;
          await validate(t);
          await saturate(spec(t, false), CONNECTIONS, 1);
        }
        // Don't let one measurement's breakage (e.g. a lost worker connection) leak into the next.
        if (t.ready) {
          await waitUntil(t.ready, 15_000, `${t.label} to be ready and idle`, 100).catch((err: unknown) => log(String(err)));
          await sleep(1_100); // one more worker status report, so the gateway's load view is current too
        }
        previous = `round ${round + 1} ${scenario.id} (${t.label})`;
        const summary = await scenario.run(t, round);
        log(`round ${round + 1}/${ROUNDS} ${scenario.id.padEnd(13)} ${t.label.padEnd(34)} ${summary}`);
        await sleep(300);
      }
    }
  }
  workerLostCount += ours.workerLost();
  await stopTarget(portkey);
  await stopTarget(ours.target);
  await stopTarget(mock.target);
}

let memory: MemoryResult[] = [];

async function memoryPhase(): Promise<void> {
  log(`memory: fresh processes in front of a slow mock (1 token, then 60 s pause); ${IDLE_STREAMS} idle streams each`);
  const slow = await startMock(root, { tokens: 4, interTokenMs: 60_000 }, 'mock direct (slow)');
  started(slow.target);
  const memDir = path.join(workDir, 'memory');
  mkdirSync(memDir);
  const ours = await startOurPlatform({ root, dir: memDir, tiersFile, inferenceEnv: openaiEngine(slow.url), capacity: IDLE_STREAMS + 200 });
  started(ours.target);
  const portkey = await startPortkey(root, slow.url);
  started(portkey);
  memory = [];
  for (const t of [slow.target, ours.target, portkey]) {
    const m = await memoryOf(t);
    memory.push(m);
    log(
      `memory ${t.label.padEnd(34)} held ${m.held}/${IDLE_STREAMS}: RSS ${fmt(m.idle / 1024, 0)} → ${fmt(m.loaded / 1024, 0)} MiB ` +
        `(+${fmt((m.loaded - m.idle) / Math.max(1, m.held), 1)} KiB/stream), after release ${fmt(m.after / 1024, 0)} MiB` +
        (m.breakdown ? `; path: ${m.breakdown}` : ''),
    );
  }
  await stopTarget(portkey);
  await stopTarget(ours.target);
  await stopTarget(slow.target);
}

/** Costs worth naming in the profile report (each line: inclusive time of these functions). */
const PROFILE_WATCH: WatchItem[] = [
  {
    label: 'grpc-js error objects for calls ending non-OK (stack captured and source-mapped)',
    names: ['getErrorStackString', 'callErrorFromStatus'],
    area: /^@grpc\/grpc-js$/,
    combine: 'sum',
  },
  { label: 'Error.stack formatting with source maps (all callers)', names: ['prepareStackTraceCallback'] },
  { label: 'gRPC client middleware chain (lib/grpc/client.ts, per call)', names: ['middleware'], area: /^lib\/grpc$/ },
  { label: 'AsyncResource.bind in http2 request (per gRPC call, Node 20)', names: ['bind'], area: /^node internals$/ },
  { label: 'pino-http per-request logger', names: ['loggingMiddleware'], area: /^pino-http$/ },
  { label: 'HTTP metrics middleware (lib/metrics/http.ts)', names: ['(anonymous)'], area: /^lib\/metrics$/ },
  { label: 'JSON body parsing (express.json)', names: ['jsonParser'] },
  { label: 'quota Settle after the response', names: ['settle'], area: /^gateway\/src$/ },
  { label: 'quota Reserve', names: ['reserve'], area: /^gateway\/src$/ },
];

interface ProfileOutcome {
  file: string;
  summary: ProfileSummary;
  load: string;
  /** Analysed window, ms after the gateway was spawned. */
  window: [number, number];
}
let profile: ProfileOutcome | undefined;

async function profilePhase(): Promise<void> {
  const profDir = path.join(root, '.data', 'bench', `profile-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(profDir, { recursive: true });
  log(`profile: gateway with --cpu-prof --cpu-prof-dir=${path.relative(root, profDir)}`);
  const mock = await startMock(root, { tokens: 16 });
  started(mock.target);
  const dir = path.join(workDir, 'profile');
  mkdirSync(dir);
  const spawnedAt = Date.now();
  const ours = await startOurPlatform({ root, dir, tiersFile, inferenceEnv: openaiEngine(mock.url), capacity: 256, cpuProfDir: profDir });
  started(ours.target);
  await validate(ours.target);
  await saturate(spec(ours.target, false), CONNECTIONS, 2);
  const loadFrom = Date.now() - spawnedAt;
  const json = await saturate(spec(ours.target, false), CONNECTIONS, PROFILE_SECONDS);
  const sse = await saturate(spec(ours.target, true), CONNECTIONS, PROFILE_SECONDS);
  const loadTo = Date.now() - spawnedAt;
  const load = `${CONNECTIONS} connections, ${PROFILE_SECONDS} s non-stream (${fmt(json.rps, 0)} req/s) then ${PROFILE_SECONDS} s stream (${fmt(sse.rps, 0)} req/s), after a 2 s warm-up`;
  log(`profile load: ${load}`);
  // SIGTERM → graceful stop → process.exit → V8 writes the profile.
  await stopProcess(ours.gateway, 20_000);
  await stopTarget(ours.target);
  await stopTarget(mock.target);
  // One file per thread: CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile. Thread 0 is the main
  // thread (the others are tsx's module-loader worker); fall back to the largest file.
  const files = readdirSync(profDir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort((a, b) => Number(a.split('.')[4] !== '0') - Number(b.split('.')[4] !== '0') || statSync(path.join(profDir, b)).size - statSync(path.join(profDir, a)).size);
  const file = files[0] ? path.join(profDir, files[0]) : undefined;
  if (!file) throw new Error(`the gateway wrote no .cpuprofile into ${profDir}`);
  // Only the measured load (startup and warm-up left out; the profiler starts a few ms after spawn).
  profile = { file, summary: analyzeCpuProfile(loadCpuProfile(file), root, { fromMs: loadFrom, toMs: loadTo }), load, window: [loadFrom, loadTo] };
  log(`profile written: ${path.relative(root, file)}`);
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

const COLS: TargetKey[] = ['mock', 'ours', 'portkey'];

function pair(key: TargetKey, a: string, b: string, d = 2): string {
  return `${fmt(med(key, a), d)} / ${fmt(med(key, b), d)}`;
}
function pairRatio(a: string, b: string): string {
  return `${ratio(med('ours', a), med('portkey', a))} / ${ratio(med('ours', b), med('portkey', b))}`;
}
function added(key: TargetKey, a: string, b: string, d = 2): string {
  if (key === 'mock') return '0';
  return `+${fmt(med(key, a) - med('mock', a), d)} / +${fmt(med(key, b) - med('mock', b), d)}`;
}
function addedRatio(a: string, b: string): string {
  const o = (m: string): number => med('ours', m) - med('mock', m);
  const p = (m: string): number => med('portkey', m) - med('mock', m);
  return `${ratio(o(a), p(a))} / ${ratio(o(b), p(b))}`;
}
function overloaded(key: TargetKey, rate: number, stream: boolean): string {
  const achieved = med(key, `rate${rate}-${stream ? 'sse' : 'json'}.achieved`);
  return Number.isFinite(achieved) && achieved < rate * 0.95 ? ` ⚠ (achieved ${fmt(achieved, 0)} req/s)` : '';
}

function resultsTable(): string {
  const rows: string[] = [
    '| metric | mock direct | ours | Portkey | ours / Portkey |',
    '|---|---:|---:|---:|---:|',
  ];
  const row = (metric: string, cell: (k: TargetKey) => string, r: string): void => {
    rows.push(`| ${metric} | ${COLS.map(cell).join(' | ')} | ${r} |`);
  };
  for (const stream of [false, true]) {
    const id = stream ? 'sat-sse' : 'sat-json';
    const name = stream ? 'stream' : 'non-stream';
    row(`**${name}: throughput at saturation** (req/s, ${CONNECTIONS} conns, ${SAT_SECONDS} s)`, (k) => fmt(med(k, `${id}.rps`), 0), ratio(med('ours', `${id}.rps`), med('portkey', `${id}.rps`)));
    row(`${name}: latency at saturation p50 / p99 (ms${stream ? ', whole stream' : ''})`, (k) => pair(k, `${id}.p50`, `${id}.p99`, 0), pairRatio(`${id}.p50`, `${id}.p99`));
  }
  for (const rate of RATES) {
    const id = `rate${rate}-json`;
    row(`non-stream @ ${rate} req/s: latency p50 / p99 (ms)`, (k) => pair(k, `${id}.p50`, `${id}.p99`) + overloaded(k, rate, false), pairRatio(`${id}.p50`, `${id}.p99`));
    row(`non-stream @ ${rate} req/s: **added latency vs mock** p50 / p99 (ms)`, (k) => added(k, `${id}.p50`, `${id}.p99`), addedRatio(`${id}.p50`, `${id}.p99`));
  }
  for (const rate of RATES) {
    const id = `rate${rate}-sse`;
    row(`stream @ ${rate} req/s: TTFT p50 / p99 (ms)`, (k) => pair(k, `${id}.ttft50`, `${id}.ttft99`) + overloaded(k, rate, true), pairRatio(`${id}.ttft50`, `${id}.ttft99`));
    row(`stream @ ${rate} req/s: **added TTFT vs mock** p50 / p99 (ms)`, (k) => added(k, `${id}.ttft50`, `${id}.ttft99`), addedRatio(`${id}.ttft50`, `${id}.ttft99`));
    row(`stream @ ${rate} req/s: whole stream p50 / p99 (ms)`, (k) => pair(k, `${id}.p50`, `${id}.p99`), pairRatio(`${id}.p50`, `${id}.p99`));
  }
  row(`TTFT, ${TTFT.sequential} sequential: p50 / p99 (ms)`, (k) => pair(k, 'ttft.seq50', 'ttft.seq99'), pairRatio('ttft.seq50', 'ttft.seq99'));
  row(`**TTFT overhead vs mock**, sequential p50 / p99 (ms)`, (k) => added(k, 'ttft.seq50', 'ttft.seq99'), addedRatio('ttft.seq50', 'ttft.seq99'));
  row(`TTFT, ${TTFT.concurrent} at concurrency ${TTFT.concurrency}: p50 / p99 (ms)`, (k) => pair(k, 'ttft.conc50', 'ttft.conc99'), pairRatio('ttft.conc50', 'ttft.conc99'));
  row(`**TTFT overhead vs mock**, concurrency ${TTFT.concurrency} p50 / p99 (ms)`, (k) => added(k, 'ttft.conc50', 'ttft.conc99'), addedRatio('ttft.conc50', 'ttft.conc99'));
  row(
    'proxy CPU per request at saturation, non-stream / stream (ms, all proxy processes)',
    (k) => (k === 'mock' ? '—' : pair(k, 'sat-json.cpu', 'sat-sse.cpu')),
    pairRatio('sat-json.cpu', 'sat-sse.cpu'),
  );
  const mem = (k: TargetKey): MemoryResult | undefined => memory.find((m) => m.key === k);
  if (memory.length > 0) {
    row(
      `front process RSS idle → with ${IDLE_STREAMS} open streams (MiB)`,
      (k) => {
        const m = mem(k);
        return m ? `${fmt(m.idle / 1024, 0)} → ${fmt(m.loaded / 1024, 0)}${m.held < IDLE_STREAMS ? ` ⚠ (${m.held} held)` : ''}` : '—';
      },
      ratio(mem('ours')?.loaded ?? Number.NaN, mem('portkey')?.loaded ?? Number.NaN),
    );
    const perStream = (m: MemoryResult | undefined): number => (m ? (m.loaded - m.idle) / Math.max(1, m.held) : Number.NaN);
    row('front process RSS per open stream (KiB)', (k) => fmt(perStream(mem(k)), 1), ratio(perStream(mem('ours')), perStream(mem('portkey'))));
    const o = mem('ours');
    if (o?.pathIdle !== undefined && o.pathLoaded !== undefined) {
      row(
        `whole proxy path RSS idle → ${IDLE_STREAMS} streams (MiB; ours = gateway+auth+quota+worker)`,
        (k) => {
          const m = mem(k);
          if (!m || k === 'mock') return '—';
          return `${fmt((m.pathIdle ?? m.idle) / 1024, 0)} → ${fmt((m.pathLoaded ?? m.loaded) / 1024, 0)}`;
        },
        ratio(o.pathLoaded, mem('portkey')?.loaded ?? Number.NaN),
      );
    }
  }
  row('failed requests (all runs)', (k) => String(failures.get(k) ?? 0), '');
  return rows.join('\n');
}

/** Per-round values of the headline metrics, to show the spread behind the medians. */
function perRound(): string {
  const metrics: Array<[string, string, number]> = [
    ['sat-json.rps', 'non-stream saturation req/s', 0],
    ['sat-sse.rps', 'stream saturation req/s', 0],
    ['rate200-json.p50', 'non-stream @ 200 req/s p50 ms', 2],
    ['rate500-json.p50', 'non-stream @ 500 req/s p50 ms', 2],
    ['rate200-sse.ttft50', 'stream @ 200 req/s TTFT p50 ms', 2],
    ['rate500-sse.ttft50', 'stream @ 500 req/s TTFT p50 ms', 2],
    ['ttft.seq50', 'TTFT sequential p50 ms', 2],
    ['ttft.conc50', `TTFT concurrency ${TTFT.concurrency} p50 ms`, 2],
  ];
  const lines = ['| metric (round 1 / 2 / …) | mock direct | ours | Portkey |', '|---|---:|---:|---:|'];
  for (const [key, label, d] of metrics) {
    const cell = (k: TargetKey): string => (results.get(k)?.get(key) ?? []).map((v) => fmt(v, d)).join(' / ') || '—';
    lines.push(`| ${label} | ${COLS.map(cell).join(' | ')} |`);
  }
  return lines.join('\n');
}

function cpuBreakdown(): string {
  const names = ['gateway', 'auth', 'quota', 'inference'];
  const lines = ['| process | non-stream ms/req | stream ms/req |', '|---|---:|---:|'];
  for (const n of names) lines.push(`| ${n} | ${fmt(med('ours', `sat-json.cpu.${n}`), 3)} | ${fmt(med('ours', `sat-sse.cpu.${n}`), 3)} |`);
  lines.push(`| **ours total** | ${fmt(med('ours', 'sat-json.cpu'), 3)} | ${fmt(med('ours', 'sat-sse.cpu'), 3)} |`);
  lines.push(`| Portkey | ${fmt(med('portkey', 'sat-json.cpu'), 3)} | ${fmt(med('portkey', 'sat-sse.cpu'), 3)} |`);
  return lines.join('\n');
}

function machine(): string {
  const cpus = os.cpus();
  return [
    `- CPU: ${cpus[0]?.model.trim() ?? 'unknown'} — ${cpus.length} logical cores (available parallelism ${os.availableParallelism()})`,
    `- Memory: ${fmt(os.totalmem() / 1024 ** 3, 1)} GiB; OS: ${os.type()} ${os.release()} (${os.arch()})`,
    `- Node ${process.version}; autocannon ${AUTOCANNON_VERSION}; @portkey-ai/gateway ${portkeyVersion(root)}`,
    `- Everything on one host over 127.0.0.1: load generator, mock upstream, and every gateway/service process share the same cores.`,
    `- 1-minute load average at start / end of the run: ${loadAverages.map((l) => l.toFixed(2)).join(' / ')} (anything above ~0 before the run is other work on the host; figures are noisier then).`,
  ].join('\n');
}

function report(): string {
  const date = new Date().toISOString().replace('T', ' ').slice(0, 16);
  const out: string[] = [
    '# Benchmarks (issue 8)',
    '',
    `Generated ${date} UTC by:`,
    '',
    '```bash',
    command,
    '```',
    '',
    '## Machine',
    '',
    machine(),
    '',
  ];
  if (MAIN) {
    out.push(
      '## What is compared',
      '',
      'Three targets in front of the **same mock OpenAI server** (`test/fixtures/mock-openai-server.ts`, 16 completion',
      'tokens, no artificial delays, its own process), same load, alternating target order within every',
      `measurement, ${ROUNDS} rounds; every figure is the **median of the ${ROUNDS} rounds**.`,
      '',
      '| target | what it does per request |',
      '|---|---|',
      '| mock direct | nothing: the client talks to the upstream (baseline) |',
      '| **ours** | gateway (express, pino-http, Prometheus HTTP metrics, JSON parse + zod validation) → **auth**: the key is checked against the gateway\'s auth cache (≤ 5 s TTL; a gRPC `Authenticate` to the auth service on a miss, i.e. about once per 5 s for this single key) → **quota** `Reserve` (gRPC unary, every request) → pick a worker → **inference worker** `Generate` (gRPC server stream; admission, openai engine) → **upstream HTTP** to the mock (SSE parsed and re-framed as proto events) → gateway re-encodes OpenAI JSON/SSE → **quota** `Settle` (gRPC unary, after the response). Circuit breaker around every gRPC call. 4 processes; per request 3 gRPC calls + 1 upstream HTTP request. |',
      '| Portkey | `@portkey-ai/gateway` Node server (hono): header-configured provider (`x-portkey-provider: openai`, `x-portkey-custom-host`), forwards to the upstream with fetch and relays the response/stream. Proxy only: no auth, no quota, no extra hop. |',
      '',
      `Body: \`${JSON.stringify(BODY)}\` (streaming adds \`"stream": true, "stream_options": {"include_usage": true}\`).`,
      'The demo key\'s tier gets very high numeric limits (`TIERS_FILE`) so the quota service counts every request',
      'but never throttles. All processes log at `warn`.',
      '',
      '## Method',
      '',
      `- **Saturation**: autocannon (programmatic), ${CONNECTIONS} connections, closed loop, ${SAT_SECONDS} s; throughput = 2xx/s; latency is autocannon's (1 ms resolution).`,
      `- **Fixed rate** (${RATES.join(' and ')} req/s, ${RATE_SECONDS} s each): an open-loop client (\`bench/lib/http-load.ts\`) sends requests at evenly spaced times on keep-alive connections`,
      '  and measures latency from each request\'s *scheduled* send time (µs resolution; client-side queueing when a target falls behind is counted).',
      '  autocannon\'s `overallRate` was not used for these figures: it releases each connection\'s share of the rate as a burst at the start of every second',
      '  and, with a rate set, back-fills latencies with a 1 ms expected interval (coordinated-omission correction), which distorts p50/p99 at these latencies.',
      `- **TTFT**: time to the first \`data:\` byte of a stream: ${TTFT.sequential} sequential requests on one keep-alive connection, then ${TTFT.concurrent} at concurrency ${TTFT.concurrency}.`,
      '  The fixed-rate stream runs also report TTFT under load.',
      '- **Added latency / TTFT overhead** = target median − mock-direct median of the same metric (medians of the per-round percentiles).',
      '- Before each measurement of ours the runner waits until the gateway\'s `/healthz` shows the worker connected, its breaker not open and',
      '  nothing in flight, plus one worker status interval (1 s), so one measurement\'s backlog or broken connection does not spill into the next.',
      '- **Proxy CPU per request**: user+sys CPU time (`/proc/<pid>/stat`) of the proxy processes during the saturation run ÷ 2xx responses (ours: gateway + auth + quota + worker; Portkey: its process). The mock and the load generator are not counted.',
      `- **Memory**: fresh processes in front of a slow mock (first token at once, then a 60 s pause); after 50 warm-up streams, RSS (\`VmRSS\`) of the front process idle, then with ${IDLE_STREAMS} open streams (each past its first \`data:\` byte, one connection each), then after closing them.`,
      '',
      '## Results',
      '',
    );
    if (workerLostCount > 0) {
      out.push(
        `**Note — lost worker connections (why ours has failures).** During this run our gateway lost its HTTP/2 connection to the`,
        `inference worker ${workerLostCount} time(s). Each time the worker closed the connection with GOAWAY code 2 (INTERNAL_ERROR); the`,
        'gateway then answers 503 `no_healthy_worker` until it has reconnected, and streams in flight end with 500 `internal_error`.',
        'Observed cause: once it has the final event the gateway cancels the `Generate` call (`relay()` → `rest.return()`, then',
        '`release()` aborts the attempt) without waiting for the call\'s status, so every request whose trailers have not arrived yet',
        'ends with an RST_STREAM(CANCEL) from the gateway (56 of 400 successful requests at 50 req/s in a `NODE_DEBUG=http2` check on',
        'the worker; more under load). Node\'s HTTP/2 server (nghttp2 ≥ 1.57, CVE-2023-44487 "rapid reset" mitigation) accepts 1000',
        'incoming resets as a burst plus 33/s, then sends GOAWAY and tears the connection down. The figures for ours therefore include',
        'these failures and the reconnects; they are not the cost of the extra hops alone.',
        '',
      );
    }
    out.push(
      resultsTable(),
      '',
      '⚠ marks a fixed-rate run where fewer than 95% of the offered requests per second completed with a 2xx (overload, failures, or both;',
      'see Failures). Latencies are of the 2xx responses only and include client-side queueing when the target fell behind.',
      '',
      '### Per-round values (the spread behind the medians)',
      '',
      perRound(),
      '',
      '### Where our CPU goes (saturation, ms of CPU per request)',
      '',
      cpuBreakdown(),
      '',
    );
    if (memory.length > 0) {
      out.push('### Memory detail', '', '| target | streams held | RSS idle → loaded → after release (MiB) | per process with streams held |', '|---|---:|---|---|');
      for (const m of memory) {
        out.push(`| ${m.label} | ${m.held}/${IDLE_STREAMS} | ${fmt(m.idle / 1024, 0)} → ${fmt(m.loaded / 1024, 0)} → ${fmt(m.after / 1024, 0)} | ${m.breakdown ?? '—'} |`);
      }
      out.push('');
    }
    if (failureLog.size > 0 || workerLostCount > 0 || crashes.length > 0) {
      out.push('### Failures', '');
      for (const c of crashes) {
        out.push(`- **our ${c.process} process died** (exit ${c.exit}) during or right after ${c.during}; the stack was restarted and the run continued. Its last output:`, '', '```', c.tail, '```', '');
      }
      if (workerLostCount > 0) {
        out.push(`- our gateway logged "worker status stream lost" ${workerLostCount} time(s) during the main phase (its HTTP/2 connection to the worker was closed; see the notes).`);
      }
      for (const [what, f] of failureLog) out.push(`- ${what}: ${f.n} failed — first: \`${(f.error ?? '').replace(/`/g, "'").slice(0, 240)}\``);
      out.push('');
    }
  }
  if (phaseErrors.length > 0) out.push('## Phases that failed', '', ...phaseErrors.map((e) => `- ${e.replace(/\n/g, ' ').slice(0, 1500)}`), '');
  if (profile) {
    out.push(
      '## Gateway CPU profile',
      '',
      `\`node --cpu-prof\` on the gateway process only, under load: ${profile.load}. File: \`${path.relative(root, profile.file)}\``,
      `(gitignored; only samples ${(profile.window[0] / 1000).toFixed(1)}–${(profile.window[1] / 1000).toFixed(1)} s after spawn are counted, i.e. the measured load without startup and warm-up;`,
      `analyse again with \`FROM_MS=${profile.window[0]} TO_MS=${profile.window[1]} node --import tsx bench/lib/cpuprofile.ts <file>\`).`,
      '',
      formatProfileMarkdown(profile.summary, 10, PROFILE_WATCH),
      '',
    );
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------

try {
  log(`${command}: ${os.cpus().length} cores, Node ${process.version}; work dir ${workDir}`);
  // A failing later phase must not throw away the figures of the earlier ones.
  const phase = async (name: string, run: () => Promise<void>): Promise<void> => {
    try {
      await run();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      phaseErrors.push(`${name} phase failed: ${message}`);
      log(`!! ${name} phase failed: ${message}`);
      for (const t of running.splice(0).reverse()) await t.stop().catch(() => undefined);
    }
  };
  if (MAIN) {
    await mainPhase();
    await phase('memory', memoryPhase);
  }
  if (PROFILE) await phase('profile', profilePhase);
  loadAverages.push(os.loadavg()[0] ?? Number.NaN);
  const md = report();
  process.stdout.write(`\n${md}\n`);
  if (!flags['no-write'] && MAIN) {
    writeFileSync(path.join(root, 'docs', 'BENCHMARKS.md'), `${md}\n`);
    log('wrote docs/BENCHMARKS.md');
  }
  log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
} catch (err) {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
} finally {
  for (const t of running.splice(0).reverse()) await t.stop().catch(() => undefined);
  rmSync(workDir, { recursive: true, force: true });
}
// Nothing may keep the process alive (sockets of a failed run, timers): leave explicitly.
process.exit(process.exitCode ?? 0);
