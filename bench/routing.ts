/**
 * Routing benchmark: which worker answers first. A heterogeneous fleet of simulator workers
 * (real processes; the simulator engine is a load-test tool, not inference) behind one real
 * gateway (+ auth and quota processes), the same seeded request schedule replayed against four
 * worker-choice strategies (ROUTING_STRATEGY): round-robin, least-loaded (the earlier rule),
 * scored (ours) and the oracle (knows every worker's true speed, degradation and cache).
 *
 *   npm run bench:routing                 # steady + bursty, 4 strategies (~5 min on 2 cores)
 *   npm run bench:routing -- --quick      # smoke run (short, steady only): checks it runs
 *   flags: --scale=3 (time scale, below) --seconds=60 --rate=4.67 --no-write
 *          --strategies=scored,oracle (a subset, for exploratory runs: never writes the section)
 *          --scenarios=bursty (a subset of steady,bursty; likewise never writes the section)
 *          --repeat=N (N repetitions, each a fresh fleet per strategy on its own arrival schedule,
 *          the same for every strategy within it; the tables give medians and ranges over them)
 *          --first-repetition=K (the repetitions are K … K+N−1: resumes or extends a series on
 *          the same schedules; other than 0, never writes the section)
 *
 * Fleet: workers at 1×, 2×, 4× and a 2× worker that is 8× slower from the middle of each run for
 * 30 % of it, then recovers. Every prompt starts with one of four long shared prefixes (≈ 11 prefix
 * blocks); a worker's simulated KV cache holds about two of them, and a cached prefix skips its
 * prefill. Prints TTFT p50/p99 (from each request's scheduled send time), throughput, errors,
 * prefix hit rate and each worker's share before / during / after the slowdown; writes its own
 * section of docs/BENCHMARKS.md (the rest of the file is left as it is).
 */
import { readFileSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createPerformanceModel } from '../lib/simulator/performance-model.js';
import { ChildProcesses, freePort, stopProcess, waitUntil, WaitAbort, type Proc } from './lib/procs.js';
import { percentile } from './lib/stats.js';
import { cleanEnv, writeBenchTiers } from './lib/targets.js';
import { MODEL_SEEDS, modelTable, sweepTable } from './routing-model.js';

const HOP_MS_TEXT = '5 ms';
/** The platform model id simulator workers advertise. */
const SIMULATOR_MODEL = 'simulator';
import { seededRandom } from '../gateway/src/fleet/scoring/random.js';
import { AuthServiceDefinition } from '../gen/xerotier/auth/v1/auth_service.js';
import { callOptions, createAppClient, createGrpcChannel } from '../lib/grpc/client.js';
import { BLOCK_CHARS, CACHE_BLOCKS, CAPACITY, DEGRADE, fleetSpec, PREFIX_COUNT, QUEUE, STRATEGIES, WORKERS, type Arrival, type Scenario, type Strategy } from './routing/fleet.js';

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    seconds: { type: 'string' },
    scale: { type: 'string' },
    rate: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
    strategies: { type: 'string' },
    repeat: { type: 'string' },
    scenarios: { type: 'string' },
    'first-repetition': { type: 'string' },
  },
  allowPositionals: false,
});
/**
 * Time scale: every simulated duration × SCALE, the request rate ÷ SCALE (the same fleet, slowed
 * down), so the processes need SCALE times less CPU per simulated second and a loaded host's
 * scheduling delays weigh less against the times measured.
 */
const SCALE = Number(flags.scale ?? 3);
const SECONDS = Number(flags.seconds ?? (flags.quick ? 8 : 20 * SCALE));
const RATE = Number(flags.rate ?? 14 / SCALE);
const ALL_SCENARIOS: readonly Scenario[] = ['steady', 'bursty'];
const SCENARIOS: Scenario[] = flags.scenarios ? ALL_SCENARIOS.filter((x) => flags.scenarios!.split(',').includes(x)) : flags.quick ? ['steady'] : [...ALL_SCENARIOS];
if (SCENARIOS.length === 0) throw new Error(`--scenarios=${flags.scenarios}: expected some of ${ALL_SCENARIOS.join(',')}`);
/**
 * Repetitions: one run's p99 is its ~3rd-slowest request, which swings up to 2× with the arrival
 * schedule, so strategies are ranked on medians over repetitions. Repetition r replays schedule
 * seed r (0: the single run's schedule) for every strategy, alternating strategies within it.
 */
const REPEAT = Number(flags.repeat ?? 1);
if (!Number.isInteger(REPEAT) || REPEAT < 1) throw new Error(`--repeat=${flags.repeat}: expected a whole number ≥ 1`);
/** The first repetition's schedule seed (repetitions FIRST_REP … FIRST_REP + REPEAT − 1). */
const FIRST_REP = Number(flags['first-repetition'] ?? 0);
if (!Number.isInteger(FIRST_REP) || FIRST_REP < 0) throw new Error(`--first-repetition=${flags['first-repetition']}: expected a whole number ≥ 0`);
const RUN_STRATEGIES: readonly Strategy[] = flags.strategies ? STRATEGIES.filter((s) => flags.strategies!.split(',').includes(s)) : STRATEGIES;
const spec = fleetSpec({ scale: SCALE, seconds: SECONDS, rate: RATE });
const BASE = spec.base;
const PREFILL_MS_PER_1K = spec.prefillMsPer1k;
const schedule = spec.schedule;
const performance = spec.performance;

const root = path.resolve(import.meta.dirname, '..');
/** Time allowed for a run's processes to start before its load begins (adapted run by run). */
let startupSlackMs = 75_000;
const t0 = Date.now();
const log = (msg: string): void => void process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
const children = new ChildProcesses();
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));
setTimeout(() => {
  process.stderr.write(`routing benchmark exceeded ${40 * REPEAT} min; aborting\n`);
  process.exit(2);
}, 40 * REPEAT * 60_000).unref();

interface Sample {
  arrival: Arrival;
  ttftMs: number | undefined;
  status: number;
  worker: string | undefined;
}

interface RunResult {
  /** The repetition (its arrival schedule's seed). */
  rep: number;
  scenario: Scenario;
  strategy: Strategy;
  samples: Sample[];
  wallMs: number;
  hitRate: number;
  /** Whether each served request found its prefix cached (the replay of replayHits). */
  hits: Map<Sample, boolean>;
  /** When the slowdown really began and ended, in ms from the start of the load. */
  slowdown: { fromMs: number; toMs: number };
  /** Share of each worker (by id) in [before, during, after] the slowdown, and overall. */
  shares: Map<string, [number, number, number, number]>;
}

/** A child exited during start-up because a port picked free was taken meanwhile (EADDRINUSE). */
class PortTaken extends WaitAbort {}

/** Throws (to stop a start-up wait) if one of the processes has exited; PortTaken when it lost its port. */
function checkAlive(procs: readonly Proc[], when: string): void {
  const dead = procs.find((p) => !p.alive());
  if (!dead) return;
  const output = dead.output().slice(-2000);
  if (output.includes('EADDRINUSE')) throw new PortTaken(`${dead.name} exited ${when}: its port was taken meanwhile (EADDRINUSE)`);
  throw new WaitAbort(`${dead.name} exited ${when}:\n${output}`);
}

/**
 * Ports are picked free and handed to a child, which binds them a moment later: another process
 * on the host may take one in between. Such a start-up is retried on new ports (a few times).
 */
async function withFreshPorts<T>(what: string, start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (!(err instanceof PortTaken) || attempt >= 3) throw err;
      log(`   ${what}: ${err.message}; starting again on new ports`);
    }
  }
}

async function startShared(dir: string): Promise<{ authPort: number; quotaPort: number; keyFile: string; procs: Proc[] }> {
  const [authPort, quotaPort] = [await freePort(), await freePort()];
  const keyFile = path.join(dir, 'demo-api-key');
  const tiersFile = writeBenchTiers(root, dir);
  const tsx = (entry: string): string[] => ['--import', 'tsx', path.join(root, entry)];
  const common = { LOG_LEVEL: 'warn', TIERS_FILE: tiersFile };
  const auth = children.start('auth', tsx('services/auth/src/main.ts'), {
    cwd: root,
    env: cleanEnv({ ...common, AUTH_HOST: '127.0.0.1', AUTH_PORT: String(authPort), AUTH_SQLITE_PATH: path.join(dir, 'auth.sqlite'), AUTH_DEMO_KEY_FILE: keyFile, AUTH_KEY_PEPPER: 'bench-pepper-0123456789abcdef' }),
  });
  const quota = children.start('quota', tsx('services/quota/src/main.ts'), {
    cwd: root,
    env: cleanEnv({ ...common, QUOTA_HOST: '127.0.0.1', QUOTA_PORT: String(quotaPort) }),
  });
  try {
    await waitUntil(async () => {
      checkAlive([auth, quota], 'during start-up');
      return existsSync(keyFile);
    }, 60_000, 'auth (demo key file)', 200);
  } catch (err) {
    await Promise.all([auth, quota].map((p) => stopProcess(p, 5_000)));
    throw err;
  }
  // The demo endpoint names the seed's model; the simulator workers advertise `simulator`, and
  // the gateway routes an endpoint only to workers advertising its model.
  const channel = createGrpcChannel(`127.0.0.1:${authPort}`);
  try {
    const admin = createAppClient(AuthServiceDefinition, channel, { address: `127.0.0.1:${authPort}`, target: 'auth' });
    // The demo key file can appear before auth's gRPC port answers: retry until it does.
    await waitUntil(
      async () => {
        if (!auth.alive()) throw new WaitAbort(`auth exited:\n${auth.output()}`);
        return admin
          .setEndpointModel({ project: 'demo', endpoint: 'chat', model: SIMULATOR_MODEL }, { ...callOptions('bench-routing'), deadline: 5000 })
          .then(() => true)
          .catch(() => false);
      },
      60_000,
      'the demo endpoint set to the simulator model',
      500,
    );
  } finally {
    channel.close();
  }
  return { authPort, quotaPort, keyFile, procs: [auth, quota] };
}

async function run(
  scenario: Scenario,
  strategy: Strategy,
  shared: { authPort: number; quotaPort: number; keyFile: string },
  dir: string,
  rep: number,
): Promise<RunResult> {
  const ports = await Promise.all(WORKERS.map(() => freePort()));
  const [gatewayPort, metricsPort] = [await freePort(), await freePort()];
  // Workers count their slowdown from this moment; the load starts at it (see the wait below),
  // so it must lie beyond the start-up of five node processes: 1.2 × the last start-up seen.
  const launchedAt = Date.now();
  const originMs = launchedAt + startupSlackMs;
  const tsx = (entry: string): string[] => ['--import', 'tsx', path.join(root, entry)];
  const procs: Proc[] = [];
  const oracleFile = path.join(dir, 'oracle.json');
  const oracle: Record<string, unknown> = {};
  WORKERS.forEach((w, k) => {
    const perf = performance(w, originMs);
    oracle[`127.0.0.1:${ports[k]}`] = { ...BASE, ...perf };
    procs.push(
      children.start(w.id, tsx('services/inference/src/main.ts'), {
        cwd: root,
        env: cleanEnv({
          LOG_LEVEL: 'warn',
          INFERENCE_HOST: '127.0.0.1',
          INFERENCE_PORT: String(ports[k]),
          INFERENCE_WORKER_ID: w.id,
          INFERENCE_REGISTRY_ADDRESS: 'off',
          INFERENCE_ENGINE: 'simulator',
          INFERENCE_CAPACITY: String(CAPACITY),
          INFERENCE_QUEUE_CAPACITY: String(QUEUE),
          INFERENCE_DRAIN_GRACE_MS: '500',
          SIM_TTFT_MS: String(BASE.timeToFirstTokenMs),
          SIM_TOKENS_PER_SECOND: String(BASE.tokensPerSecond),
          SIM_RESPONSE_TOKENS: String(BASE.responseTokens),
          SIM_SPEED_FACTOR: String(w.speed),
          SIM_PREFILL_MS_PER_1K_TOKENS: String(PREFILL_MS_PER_1K),
          SIM_PREFIX_CACHE_BLOCKS: String(CACHE_BLOCKS),
          SIM_PREFIX_BLOCK_CHARS: String(BLOCK_CHARS),
          SIM_DEGRADE_FACTOR: String(perf.degrade.factor),
          SIM_DEGRADE_AFTER_MS: String(perf.degrade.afterMs),
          SIM_DEGRADE_FOR_MS: String(perf.degrade.forMs),
          SIM_CLOCK_ORIGIN_MS: String(originMs),
        }),
      }),
    );
  });
  writeFileSync(oracleFile, JSON.stringify({ workers: oracle }));
  const gateway = children.start('gateway', tsx('gateway/src/main.ts'), {
    cwd: root,
    env: cleanEnv({
      LOG_LEVEL: 'warn',
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_PORT: String(gatewayPort),
      GATEWAY_METRICS_PORT: String(metricsPort),
      GATEWAY_GRPC_PORT: '0',
      GATEWAY_REGISTRY_ADDRESS: 'off',
      LEDGER_ADDRESS: 'off',
      AUTH_ADDRESS: `127.0.0.1:${shared.authPort}`,
      QUOTA_ADDRESS: `127.0.0.1:${shared.quotaPort}`,
      INFERENCE_WORKERS: ports.map((p) => `cpu=127.0.0.1:${p}`).join(','),
      GATEWAY_DRAIN_GRACE_MS: '500',
      // A slow first token is what is measured here, not a reason to move the request.
      GATEWAY_TTFT_TIMEOUT_MS: '120000',
      ROUTING_STRATEGY: strategy,
      ROUTING_PREFIX_BLOCK_CHARS: String(BLOCK_CHARS),
      // The gateway's per-worker prefix memory sized like the workers' caches (an operator setting).
      ROUTING_PREFIX_MEMORY_BLOCKS: String(CACHE_BLOCKS),
      ...(strategy === 'oracle' ? { ROUTING_ORACLE_FILE: oracleFile } : {}),
    }),
  });
  procs.push(gateway);
  try {
    await waitUntil(
      async () => {
        checkAlive(procs, 'during start-up');
        const res = await fetch(`http://127.0.0.1:${metricsPort}/workers`, { signal: AbortSignal.timeout(2_000) });
        const body = (await res.json()) as { workers?: Array<{ connected?: boolean; model_loaded?: boolean }> };
        return (body.workers ?? []).filter((w) => w.connected && w.model_loaded).length === WORKERS.length;
      },
      // Five node processes start at once; on a host shared with other work that can take minutes.
      240_000,
      'gateway with four connected workers',
      250,
    ).catch((err: unknown) => {
      if (err instanceof WaitAbort) throw err;
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n${gateway.output().slice(-2000)}`);
    });
    startupSlackMs = Math.max(6_000, Math.round(1.2 * (Date.now() - launchedAt)));
    const late = Date.now() - originMs;
    if (late > 0) log(`   (start-up took ${late} ms beyond the planned origin: the slowdown comes that much earlier in the load)`);
    else await new Promise((r) => setTimeout(r, -late));
    const key = readFileSync(shared.keyFile, 'utf8').trim();
    const url = `http://127.0.0.1:${gatewayPort}/demo/chat/v1/chat/completions`;
    // The model's seeds (bench/routing-model.ts): seed 0 is the single run's schedule.
    const arrivals = schedule(scenario, seededRandom((scenario === 'steady' ? 11 : 23) + 101 * rep));
    const started = Date.now();
    // The degrading worker's slowdown counts from the clock origin the workers were given (the
    // simulator's schedule, lib/simulator/performance-model.ts), not from the load's start: a late
    // start-up moves it earlier in the load. The share windows are taken from it.
    const { degrade } = performance(WORKERS.find((w) => w.degrades)!, originMs);
    const fromMs = originMs + degrade.afterMs - started;
    const slowdown = { fromMs, toMs: fromMs + degrade.forMs };
    log(`   slowdown from ${(fromMs / 1000).toFixed(1)} s to ${(slowdown.toMs / 1000).toFixed(1)} s of the load (planned ${(degrade.afterMs / 1000).toFixed(1)} s)`);
    const samples = await Promise.all(
      arrivals.map(async (a): Promise<Sample> => {
        const wait = started + a.atMs - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const sent = started + a.atMs;
        try {
          const res = await fetch(url, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: JSON.stringify({
              model: 'simulator',
              stream: true,
              max_tokens: BASE.responseTokens,
              messages: spec.messages(a),
            }),
            signal: AbortSignal.timeout(60_000),
          });
          const reader = res.body!.getReader();
          const first = await reader.read();
          const ttftMs = res.status === 200 && !first.done ? Date.now() - sent : undefined;
          let text = first.value ? Buffer.from(first.value).toString() : '';
          for (;;) {
            const next = await reader.read();
            if (next.done) break;
            text += Buffer.from(next.value).toString();
          }
          const ok = res.status === 200 && text.includes('data: [DONE]');
          return { arrival: a, ttftMs: ok ? ttftMs : undefined, status: ok ? 200 : res.status === 200 ? 599 : res.status, worker: res.headers.get('x-xerotier-worker-id') ?? undefined };
        } catch {
          return { arrival: a, ttftMs: undefined, status: 0, worker: undefined };
        }
      }),
    );
    const wallMs = Date.now() - started;
    const hits = replayHits(samples, originMs);
    const hitRate = hits.size === 0 ? 0 : [...hits.values()].filter(Boolean).length / hits.size;
    return { rep, scenario, strategy, samples, wallMs, hitRate, hits, slowdown, shares: shares(samples, slowdown) };
  } finally {
    await stopProcess(gateway, 5_000);
    await Promise.all(procs.filter((p) => p !== gateway).map((p) => stopProcess(p, 5_000)));
  }
}

/**
 * Prefix hits: the observed routing (which worker served each request, from the
 * x-xerotier-worker-id header) replayed in send order through the simulator's own cache model;
 * whether each served request found its prefix cached (the hit rate is their share).
 */
function replayHits(samples: Sample[], originMs: number): Map<Sample, boolean> {
  const models = new Map<string, ReturnType<typeof createPerformanceModel>>(WORKERS.map((w) => [w.id, createPerformanceModel(performance(w, originMs))]));
  const hits = new Map<Sample, boolean>();
  for (const s of [...samples].sort((a, b) => a.arrival.atMs - b.arrival.atMs)) {
    const m = s.worker ? models.get(s.worker) : undefined;
    if (!m || s.status !== 200) continue;
    const messages = spec.messages(s.arrival);
    const t = m.begin(messages, 2000, BASE);
    hits.set(s, t.cachedPromptTokens > 0);
  }
  return hits;
}

function shares(samples: Sample[], slowdown: { fromMs: number; toMs: number }): Map<string, [number, number, number, number]> {
  const edges = [slowdown.fromMs, slowdown.toMs];
  const windowOf = (ms: number): 0 | 1 | 2 => (ms < edges[0]! ? 0 : ms < edges[1]! ? 1 : 2);
  const totals = [0, 0, 0, 0];
  const counts = new Map<string, [number, number, number, number]>(WORKERS.map((w): [string, [number, number, number, number]] => [w.id, [0, 0, 0, 0]]));
  for (const s of samples) {
    if (!s.worker || s.status !== 200) continue;
    const k = windowOf(s.arrival.atMs);
    const c = counts.get(s.worker);
    if (!c) continue;
    totals[k]! += 1;
    totals[3]! += 1;
    c[k] += 1;
    c[3] += 1;
  }
  for (const c of counts.values()) for (const k of [0, 1, 2, 3] as const) c[k] = totals[k]! > 0 ? c[k] / totals[k]! : 0;
  return counts;
}

const pct = (x: number): string => `${(x * 100).toFixed(0)} %`;
const ms = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : '—');
/** The middle value; with an even count, the mean of the two middle ones (a repeat of 2 or 4). */
const median = (xs: number[]): number => {
  const sorted = [...xs].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const ttfts = (r: RunResult): number[] => r.samples.filter((s) => s.ttftMs !== undefined).map((s) => s.ttftMs!);

/** Per window (before, during, after the slowdown), the least share of a worker healthy then. */
function leastHealthy(r: RunResult): [number, number, number] {
  const healthy = (k: 0 | 1 | 2): number => Math.min(...WORKERS.filter((w) => k !== 1 || !w.degrades).map((w) => r.shares.get(w.id)![k]));
  return [healthy(0), healthy(1), healthy(2)];
}

/**
 * With --repeat: per scenario and strategy, the median (and range) over the repetitions of TTFT
 * p50 and p99, the median throughput, hit rate and shares, the errors summed; then ours against
 * the oracle and round-robin as ratios of the medians, and per repetition (same schedule).
 */
function repeatedTable(results: RunResult[]): string {
  const lines: string[] = [];
  const range = (xs: number[]): string => `${ms(median(xs))} (${ms(Math.min(...xs))}–${ms(Math.max(...xs))})`;
  for (const scenario of SCENARIOS) {
    const rows = results.filter((r) => r.scenario === scenario);
    if (rows.length === 0) continue;
    const reps = new Set(rows.map((r) => r.rep)).size;
    lines.push(`### ${scenario === 'steady' ? 'Steady arrivals' : 'Bursty arrivals'} (${rows[0]!.samples.length} requests in ${SECONDS} s; ${reps} repetitions, schedule seeds ${FIRST_REP}–${FIRST_REP + reps - 1}, each the same for every strategy)`, '');
    lines.push(
      '| strategy | TTFT p50 (ms): median (range) | TTFT p99 (ms): median (range) | throughput (req/s) | errors (all) | prefix hit rate | worker shares 1× / 2× / 4× / 2×→slow: whole run | before the slowdown | during | after recovery | least healthy share before / during / after (median, least) |',
    );
    lines.push('|---|---:|---:|---:|---:|---:|---|---|---|---|---|');
    const p99s = new Map<Strategy, number[]>();
    for (const strategy of RUN_STRATEGIES) {
      const runs = rows.filter((r) => r.strategy === strategy);
      if (runs.length === 0) continue;
      const p99 = runs.map((r) => percentile(ttfts(r), 99));
      p99s.set(strategy, p99);
      const share = (k: 0 | 1 | 2 | 3): string => WORKERS.map((w) => pct(median(runs.map((r) => r.shares.get(w.id)![k])))).join(' / ');
      const least = [0, 1, 2].map((k) => runs.map((r) => leastHealthy(r)[k]!));
      lines.push(
        `| ${strategy === 'scored' ? '**ours (scored)**' : strategy} | ${range(runs.map((r) => percentile(ttfts(r), 50)))} | ${range(p99)} | ${median(runs.map((r) => ttfts(r).length / (r.wallMs / 1000))).toFixed(1)} | ${runs.reduce((n, r) => n + r.samples.length - ttfts(r).length, 0)} | ${pct(median(runs.map((r) => r.hitRate)))} | ${share(3)} | ${share(0)} | ${share(1)} | ${share(2)} | ${least.map((xs) => `${pct(median(xs))} (${pct(Math.min(...xs))})`).join(' / ')} |`,
      );
    }
    const ours = p99s.get('scored');
    const against = (s: Strategy): string | undefined => {
      const other = p99s.get(s);
      if (!ours || !other) return undefined;
      const paired = ours.flatMap((x, i) => (other[i] === undefined ? [] : [x / other[i]!]));
      return `ours vs ${s}, TTFT p99: ratio of the medians ${(median(ours) / median(other)).toFixed(2)}× (per repetition ${paired.map((x) => x.toFixed(2)).join(', ')}; median ${median(paired).toFixed(2)}×)`;
    };
    const claims = [against('round-robin'), against('oracle')].filter((x): x is string => x !== undefined);
    if (claims.length > 0) lines.push('', `${claims.join('; ')}. Targets: ≤ 0.70× round-robin, ≤ 1.10× the oracle.`);
    lines.push('');
  }
  return lines.join('\n');
}

function table(results: RunResult[]): string {
  if (REPEAT > 1) return repeatedTable(results);
  const lines: string[] = [];
  for (const scenario of SCENARIOS) {
    const rows = results.filter((r) => r.scenario === scenario);
    if (rows.length === 0) continue;
    const offered = rows[0]!.samples.length;
    lines.push(`### ${scenario === 'steady' ? 'Steady arrivals' : 'Bursty arrivals'} (${offered} requests in ${SECONDS} s, same schedule for every strategy)`, '');
    lines.push('| strategy | TTFT p50 (ms) | TTFT p99 (ms) | throughput (req/s) | errors | prefix hit rate | worker shares 1× / 2× / 4× / 2×→slow: whole run | before the slowdown | during | after recovery |');
    lines.push('|---|---:|---:|---:|---:|---:|---|---|---|---|');
    for (const r of rows) {
      const ok = r.samples.filter((s) => s.ttftMs !== undefined).map((s) => s.ttftMs!);
      const share = (k: 0 | 1 | 2 | 3): string => WORKERS.map((w) => pct(r.shares.get(w.id)![k])).join(' / ');
      lines.push(
        `| ${r.strategy === 'scored' ? '**ours (scored)**' : r.strategy} | ${ms(percentile(ok, 50))} | ${ms(percentile(ok, 99))} | ${(ok.length / (r.wallMs / 1000)).toFixed(1)} | ${r.samples.length - ok.length} | ${pct(r.hitRate)} | ${share(3)} | ${share(0)} | ${share(1)} | ${share(2)} |`,
      );
    }
    const p99 = (s: Strategy): number => {
      const r = rows.find((x) => x.strategy === s);
      return r ? percentile(r.samples.filter((x) => x.ttftMs !== undefined).map((x) => x.ttftMs!), 99) : Number.NaN;
    };
    // A subset of the strategies (--strategies) compares only what ran.
    const vsRoundRobin = Number.isFinite(p99('round-robin')) ? `Ours vs round-robin, TTFT p99: ${pct(1 - p99('scored') / p99('round-robin'))} better (target ≥ 30 %); ` : '';
    const vsOracle = Number.isFinite(p99('oracle')) ? `ours vs oracle: ${((p99('scored') / p99('oracle') - 1) * 100).toFixed(0)} % (target ≤ +10 %).` : '';
    lines.push('', `${vsRoundRobin}${vsOracle}`, '');
  }
  return lines.join('\n');
}

/** What the model's per-request trace (runModel's `trace`) shows about the gap to the oracle. */
const WHY_SLOWER = [
  '**Why ours trails the oracle** (traced with `runModel(..., trace)`: each request\'s worker, TTFT, cache hit, queueing and every worker\'s cost when it was sent):',
  'the router hears of a request at its first token (a TTFT sample) and at every token relayed (its pace against the worker\'s known token rate), not only at its end, and a',
  'worker that has not answered a request sent to a free slot is expected to take at least that long plus the fleet\'s typical TTFT. A full worker\'s wait for a slot is',
  'the time until its first slot frees up: each request decoding there ends after its remaining tokens at its own live pace since its first token, each one not decoding yet',
  'holds a slot for a whole slot time, so an 8× slower worker shows a long queue within a few tokens. What remains of ours\' slowest 1 % (bursty, the 3 slowest of each',
  'seed): mostly the slowdown itself (the fleet is a worker short and every burst queues everywhere; the oracle\'s slowest are there too), the first second of a run (every',
  'worker\'s first answers are cache misses; the 1× worker\'s takes ~650 ms and nothing tells it is slow before it answers) and the first second of the slowdown.',
  'Earlier causes found the same way and fixed: the queue estimate used the averaged token rate (a second burst into the slowdown it still expected the degraded',
  'worker\'s answers ~3× faster than they came, and requests queued there waited ~2.7 s); a worker heard from after a silence whose first sample had queued was scored',
  'like a new worker while still slow; exploration probes that were cache misses or queued on the slow worker; a worker known only for cache hits',
  'was expected to answer a miss as fast; the queue wait counted half of each answer\'s time on the slot; a worker\'s miss figure from before a slowdown that its cached prompts',
  'had since shown; a silence of ROUTING_PROBE_AFTER_MS (2 s, not scaled: at time scale 3 every idle gap between bursts, and most gaps between the 1× worker\'s requests)',
  'wiped a worker\'s token rate and answer length, so its queue was counted without decode time (a silence is now counted in the requests a worker missed);',
  'a prompt went to a worker without its prefix whenever every holder looked slightly busier, evicting another prefix there that later prompts would have hit',
  '(a prompt is now charged for the prefix blocks it would evict: the prefix hit rate went from 81 % to 87 % bursty; docs/decisions.md); a worker that had given first tokens',
  'but finished no answer yet had its queue counted without decode time (in the first burst the 1× worker, still on its first answers, was sent requests that waited',
  'seconds behind them; its decode rate is now the live pace of those answers), and every request waiting there was counted at the worker\'s average TTFT, hit or miss',
  '(a miss holds its slot for a whole prefill: cache misses sent into the fastest worker\'s queue at the end of a burst delayed the requests behind them more than expected;',
  'each waiting request now counts as the hit or miss it was expected to be).',
].join('\n');

function section(results: RunResult[]): string {
  return [
    '## Routing: which worker answers first',
    '',
    `Generated ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC by \`npm run bench:routing${flags.quick ? ' -- --quick' : REPEAT > 1 ? ` -- --repeat=${REPEAT}` : ''}\` (bench/routing.ts) on ${os.cpus().length} cores (shared with other work; 1-minute load average ${os.loadavg()[0]!.toFixed(1)} at the end).`,
    '',
    ...(os.loadavg()[0]! > 2 * os.cpus().length
      ? [
          `⚠ The host was saturated by other work during this run (1-minute load average ${os.loadavg()[0]!.toFixed(0)} on ${os.cpus().length} cores): timers and processes ran late, so these real-process figures measure the host more than the routing. The model below is the routing alone.`,
          '',
        ]
      : []),
    'Real processes: auth, quota, one gateway and four **simulator** workers (the load-test engine, not inference) over gRPC; a fresh gateway and fresh workers',
    `for every strategy (ROUTING_STRATEGY). Workers: speed 1×, 2×, 4× and a 2× worker that becomes ${DEGRADE.factor}× slower at ${pct(DEGRADE.at)} of each run and recovers after ${pct(DEGRADE.for)} of it;`,
    `capacity ${CAPACITY} + queue ${QUEUE} each; at speed 1: first token ${BASE.timeToFirstTokenMs} ms + prefill ${PREFILL_MS_PER_1K} ms per 1,000 uncached prompt tokens, ${BASE.tokensPerSecond.toFixed(1)} tokens/s, ${BASE.responseTokens} tokens per answer.`,
    `Prompts: one of ${PREFIX_COUNT} shared system prompts (${11 * BLOCK_CHARS} characters, ≈ 1,400 tokens) + a short question; each worker's simulated KV cache holds ${CACHE_BLOCKS} blocks of ${BLOCK_CHARS} characters (about two prefixes).`,
    `Load: streaming requests on a seeded schedule, ${RATE.toFixed(2)} req/s on average for ${SECONDS} s: *steady* = Poisson; *bursty* = ${SCALE} s at ${(2.5 * RATE).toFixed(2)} req/s then ${1.5 * SCALE} s idle.`,
    `Time scale ${SCALE}: the fleet is the benchmark's base fleet (60 ms first token, 400 ms per 1,000 prefill tokens, 40 tokens/s at speed 1; 14 req/s) slowed ${SCALE}× with the load, so a host shared with other work distorts the figures less.`,
    'TTFT is measured from each request\'s scheduled send time to the first body byte (the gateway sends headers with the first token); errors (503 capacity/queue full, timeouts) are not in the percentiles.',
    'Prefix hit rate: the observed routing (`x-xerotier-worker-id`) replayed in send order through the simulator\'s cache model. Shares: requests served per worker, by send time, before / during / after the slowdown (as it really fell in the load: a late start-up moves it earlier).',
    'The oracle is given each worker\'s true model (lib/simulator/performance-model.ts) and mirrors its cache; it picks the lowest expected TTFT (true prefill for this prompt at current speed + expected wait for a slot).',
    '',
    table(results),
    '',
    '### The same fleet as an event-driven model (routing alone)',
    '',
    '`bench/routing-model.ts` replays the same fleet, schedule and strategies with the gateway\'s real router code and the simulator\'s real performance model on a virtual clock',
    `(time scale 1, ${HOP_MS_TEXT} per hop for gateway, gRPC and client): no host noise, deterministic. Each figure is the median over ${MODEL_SEEDS} seeds (arrival schedule and picker randomness):`,
    'a run\'s p99 is its 3rd-slowest request of ~300, which swings up to 2× with the seed, so single runs cannot rank settings. *Outside cold start and slowdown onset*: the p99 of requests',
    'sent neither in the first second (no worker has answered yet) nor in the first second of the slowdown (visible only as answers come late): the windows where the oracle knows what no feedback can tell yet.',
    'It is what the defaults were chosen with (one-knob variations below); it is a model, not a measurement.',
    '',
    modelTable(),
    '',
    WHY_SLOWER,
    '',
    sweepTable(),
  ].join('\n');
}

/** Replaces (or appends) this benchmark's own section of docs/BENCHMARKS.md. */
function writeSection(md: string): void {
  const file = path.join(root, 'docs', 'BENCHMARKS.md');
  const current = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const heading = '## Routing: which worker answers first';
  const at = current.indexOf(heading);
  let next: string;
  if (at < 0) next = `${current.trimEnd()}\n\n${md}\n`;
  else {
    const rest = current.slice(at + heading.length);
    const end = rest.search(/\n## /);
    next = `${current.slice(0, at)}${md}\n${end < 0 ? '' : rest.slice(end + 1)}`;
  }
  writeFileSync(file, next);
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'xero-routing-'));
const results: RunResult[] = [];
let shared: Awaited<ReturnType<typeof startShared>> | undefined;
try {
  log(`routing benchmark: ${SCENARIOS.join(' + ')} × ${RUN_STRATEGIES.join(', ')}; ${SECONDS} s at ${RATE.toFixed(2)} req/s each (time scale ${SCALE})${REPEAT > 1 ? `; ${REPEAT} repetitions` : ''}`);
  shared = await withFreshPorts('auth and quota', () => startShared(dir));
  for (let rep = FIRST_REP; rep < FIRST_REP + REPEAT; rep++) for (const scenario of SCENARIOS) {
    for (const strategy of RUN_STRATEGIES) {
      const name = `${REPEAT > 1 ? `#${rep} ` : ''}${scenario} / ${strategy}`;
      log(`${name}: starting gateway and workers`);
      const r = await withFreshPorts(name, () => run(scenario, strategy, shared!, dir, rep));
      const ok = r.samples.filter((s) => s.ttftMs !== undefined).map((s) => s.ttftMs!);
      const failed = new Map<number, number>();
      for (const x of r.samples) if (x.ttftMs === undefined) failed.set(x.status, (failed.get(x.status) ?? 0) + 1);
      const byStatus = [...failed].map(([status, n]) => `${n} × ${status === 0 ? 'no response' : status === 599 ? 'stream cut' : status}`).join(', ');
      log(`${name}: TTFT p50 ${ms(percentile(ok, 50))} ms, p99 ${ms(percentile(ok, 99))} ms, ${r.samples.length - ok.length} errors${byStatus ? ` (${byStatus})` : ''}, hit rate ${pct(r.hitRate)}`);
      // The slowest requests (what the p99 is made of): when they were sent, where, how long.
      const slowest = r.samples.filter((x) => x.ttftMs !== undefined).sort((a, b) => b.ttftMs! - a.ttftMs!).slice(0, 5);
      const kind = (x: Sample): string => (r.hits.has(x) ? (r.hits.get(x) ? ' hit' : ' miss') : '');
      log(`   slowest: ${slowest.map((x) => `${(x.arrival.atMs / 1000).toFixed(1)} s → ${x.worker ?? '?'}${kind(x)} ${ms(x.ttftMs!)} ms`).join(', ')}`);
      // Each repetition's shares (the tables give only medians and the least over repetitions).
      log(`   shares ${WORKERS.map((w) => w.id).join(' / ')} before | during | after: ${[0, 1, 2].map((k) => WORKERS.map((w) => pct(r.shares.get(w.id)![k as 0 | 1 | 2])).join(' / ')).join(' | ')}; least healthy ${leastHealthy(r).map(pct).join(' / ')}`);
      if (ok.length === 0) throw new Error(`${name}: no request succeeded (${byStatus}); not writing figures`);
      results.push(r);
    }
  }
  const md = section(results);
  process.stdout.write(`\n${md}\n`);
  if (!flags['no-write'] && !flags.quick && RUN_STRATEGIES.length === STRATEGIES.length && SCENARIOS.length === ALL_SCENARIOS.length && FIRST_REP === 0) {
    writeSection(md);
    log('wrote the routing section of docs/BENCHMARKS.md');
  }
} catch (err) {
  process.stderr.write(`routing benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
} finally {
  if (shared) await Promise.all(shared.procs.map((p) => stopProcess(p, 5_000)));
  rmSync(dir, { recursive: true, force: true });
}
process.exit(process.exitCode ?? 0);
