/**
 * Event-driven replica of the routing benchmark (bench/routing.ts): the same fleet, workload and
 * strategies, the gateway's real router code (gateway/src/fleet/scoring/) and the simulator's
 * real performance model (lib/simulator/), on a virtual clock instead of processes. It measures
 * routing alone (no gateway, gRPC or host overhead; a fixed 5 ms per hop stands in for them),
 * deterministically and in seconds, so it is what the router's defaults were tuned with; the
 * real-process benchmark is the measurement. A model, not a measurement: its figures say so.
 * The tables give medians over MODEL_SEEDS seeds; runModel's `trace` hands out every request
 * (worker, TTFT, cache hit, queued, the scorer's costs) for finding out which requests are slow.
 *
 *   node --import tsx bench/routing-model.ts           # the four strategies, steady and bursty (seconds)
 *   node --import tsx bench/routing-model.ts --sweep   # + one-knob variations of the defaults (~1 min)
 *   node --import tsx bench/routing-model.ts --scale=1,3 --seeds=101 [--scenarios=bursty]
 *        [--strategies=scored,oracle] [--set=silence.afterRequests=0,silence.afterMs=2000]
 *                                                     # ours (with --set) against the oracle, per time scale
 * (npm run bench:routing prints and writes both tables too, after its real-process runs.)
 */
import { parseArgs } from 'node:util';
import { prefixBlockHashes } from '../lib/chat/prefix-blocks.js';
import { createPerformanceModel } from '../lib/simulator/performance-model.js';
import { createVirtualClock } from '../lib/simulator/virtual-clock.js';
import type { Candidate, Dispatch } from '../gateway/src/fleet/scoring/candidate.js';
import { createOracle } from '../gateway/src/fleet/scoring/oracle.js';
import { seededRandom } from '../gateway/src/fleet/scoring/random.js';
import { createRouter } from '../gateway/src/fleet/scoring/router.js';
import { DEFAULT_ROUTING, type RoutingSettings } from '../gateway/src/fleet/scoring/settings.js';
import { percentile } from './lib/stats.js';
import { BLOCK_CHARS, CACHE_BLOCKS, CAPACITY, DEGRADE, fleetSpec, PROMPT_TOKENS_ESTIMATE, QUEUE, STRATEGIES, WORKERS, type Scenario, type Strategy } from './routing/fleet.js';

/** Gateway, gRPC and client time per hop in the model. */
const HOP_MS = 5;

export interface ModelResult {
  p50: number;
  p99: number;
  /**
   * TTFT p99 of the requests sent outside the first second of the run (cold start: no worker has
   * answered yet) and the first second of the slowdown (its onset shows only as answers come
   * late): the two windows where the oracle knows what no feedback can tell yet.
   */
  p99Settled: number;
  errors: number;
  hitRate: number;
  /** Per worker: [whole run, before, during, after the slowdown]. */
  shares: number[][];
}

/** One request as the model served it (for finding out which requests are slow and why). */
export interface TraceEntry {
  atMs: number;
  worker: number;
  ttftMs: number;
  /** Prefix-cache hit on the worker that served it. */
  hit: boolean;
  /** It waited for a slot there. */
  queued: boolean;
  /** Requests on the chosen worker when it was sent (running + queued). */
  inFlight: number;
  /** The scorer's expected TTFT per eligible worker when it was sent, and the chosen one's. */
  costs: number[];
  /** Per eligible worker, the share of the prompt's prefix blocks the scorer expected there. */
  hitShares: number[];
  chosenCost: number;
}

export function runModel(strategy: Strategy, scenario: Scenario, over: Partial<RoutingSettings> = {}, scale = 1, trace?: (e: TraceEntry) => void, seed = 0): ModelResult {
  const spec = fleetSpec({ scale });
  const { now: clock, at, run } = createVirtualClock();
  const models = WORKERS.map((w) => createPerformanceModel(spec.performance(w, 0), clock));
  const oracleModels = Object.fromEntries(WORKERS.map((w, k) => [`w${k}`, { ...spec.base, ...spec.performance(w, 0) }]));
  const settings: RoutingSettings = {
    ...DEFAULT_ROUTING,
    strategy,
    prefixBlockChars: BLOCK_CHARS,
    prefixMemoryBlocks: CACHE_BLOCKS,
    ...over,
  };
  const oracle = strategy === 'oracle' ? createOracle({ workers: oracleModels }, clock) : undefined;
  const router = createRouter({ settings, random: seededRandom(5 + seed), now: clock, oracle });
  const keys = WORKERS.map((_, k) => ({ k }));
  const running = WORKERS.map(() => 0);
  const inFlight = WORKERS.map(() => 0);
  const queues: Array<Array<() => void>> = WORKERS.map(() => []);
  const ttfts: number[] = [];
  const settled: number[] = [];
  const degradeAt = spec.seconds * 1000 * DEGRADE.at;
  const blind = (sentAt: number): boolean => sentAt < 1000 * scale || (sentAt >= degradeAt && sentAt < degradeAt + 1000 * scale);
  const shares = WORKERS.map(() => [0, 0, 0, 0]);
  let errors = 0;
  let hits = 0;
  const windowOf = (ms: number): number => (ms < spec.seconds * 1000 * DEGRADE.at ? 1 : ms < spec.seconds * 1000 * (DEGRADE.at + DEGRADE.for) ? 2 : 3);

  const generate = (k: number, sentAt: number, dispatch: Dispatch, messages: Array<{ content: string }>, traced?: Omit<TraceEntry, 'ttftMs' | 'hit'>): void => {
    running[k]! += 1;
    const timing = models[k]!.begin(messages, PROMPT_TOKENS_ESTIMATE, spec.base);
    if (timing.cachedPromptTokens > 0) hits += 1;
    const first = clock() + timing.firstTokenMs;
    const end = first + (spec.base.responseTokens - 1) * timing.interTokenMs;
    at(first + HOP_MS, () => {
      ttfts.push(clock() - sentAt + HOP_MS);
      if (!blind(sentAt)) settled.push(clock() - sentAt + HOP_MS);
      if (traced) trace?.({ ...traced, ttftMs: clock() - sentAt + HOP_MS, hit: timing.cachedPromptTokens > 0 });
      router.firstToken(keys[k]!, dispatch);
    });
    // The relay reports every token as it passes (one event per token, each scheduling the next),
    // and the end with the last one.
    const token = (i: number): void =>
      at(first + i * timing.interTokenMs + HOP_MS, () => {
        router.progress(dispatch, 1);
        if (i + 1 < spec.base.responseTokens) token(i + 1);
        else {
          inFlight[k]! -= 1;
          router.ended(keys[k]!, dispatch, true);
        }
      });
    token(0);
    at(end, () => {
      running[k]! -= 1;
      queues[k]!.shift()?.();
    });
  };

  for (const a of spec.schedule(scenario, seededRandom((scenario === 'steady' ? 11 : 23) + 101 * seed))) {
    at(a.atMs + HOP_MS, () => {
      const eligible = WORKERS.map((_, k) => k).filter((k) => inFlight[k]! < CAPACITY + QUEUE);
      if (eligible.length === 0) {
        errors += 1;
        return;
      }
      const candidates: Candidate[] = eligible.map((k) => ({ key: keys[k]!, address: `w${k}`, inFlight: inFlight[k]!, capacity: CAPACITY, reportedTtftMs: undefined, owner: undefined }));
      const messages = spec.messages(a);
      const hint = { prefixBlocks: prefixBlockHashes(messages, BLOCK_CHARS), promptTokens: PROMPT_TOKENS_ESTIMATE, project: undefined };
      const seen = trace ? router.estimates(candidates, hint) : [];
      const costs = seen.map((e) => e.cost);
      const hitShares = seen.map((e) => e.hitShare);
      const choice = router.choose(candidates, hint);
      const k = eligible[choice.index]!;
      const traced = trace
        ? { atMs: a.atMs, worker: k, queued: running[k]! >= CAPACITY, inFlight: inFlight[k]!, costs, hitShares, chosenCost: choice.dispatch.expectedMs }
        : undefined;
      inFlight[k]! += 1;
      shares[k]![0]! += 1;
      shares[k]![windowOf(a.atMs)]! += 1;
      const start = (): void => generate(k, a.atMs, choice.dispatch, messages, traced);
      if (running[k]! < CAPACITY) start();
      else queues[k]!.push(start);
    });
  }
  run();
  const totals = [0, 1, 2, 3].map((w) => shares.reduce((n, s) => n + s[w]!, 0));
  return {
    p50: percentile(ttfts, 50),
    p99: percentile(ttfts, 99),
    p99Settled: percentile(settled, 99),
    errors,
    hitRate: ttfts.length > 0 ? hits / ttfts.length : 0,
    shares: shares.map((s) => s.map((x, w) => (totals[w]! > 0 ? x / totals[w]! : 0))),
  };
}

const pct = (x: number): string => `${(x * 100).toFixed(0)} %`;

/**
 * Runs per configuration in the tables: the same fleet and rates, `seeds` different arrival
 * schedules and picker random streams. One run's p99 is its 3rd-slowest request of ~300, so a
 * single seed's figure swings by 2× with the schedule; the tables give medians over the seeds.
 */
export const MODEL_SEEDS = 21;

const median = (xs: number[]): number => percentile(xs, 50);

interface Summary {
  p50: number;
  p99: number;
  p99Min: number;
  p99Max: number;
  p99Settled: number;
  errors: number;
  hitRate: number;
  shares: number[][];
  /**
   * The least-used healthy worker's share before / during / after the slowdown (during: the
   * degraded worker left out), the median over the seeds of each seed's least; and the seeds
   * where a healthy worker got less than 5 % in some window, and in each window.
   */
  leastHealthy: number[];
  seedsBelow5: number;
  seedsBelow5ByWindow: number[];
}

/** Per window (before, during, after the slowdown), the least share of a worker healthy then. */
function leastHealthyShares(r: ModelResult): number[] {
  const degraded = WORKERS.findIndex((w) => w.degrades);
  return [1, 2, 3].map((w) => Math.min(...r.shares.filter((_, k) => w !== 2 || k !== degraded).map((s) => s[w]!)));
}

export function summarize(strategy: Strategy, scenario: Scenario, over: Partial<RoutingSettings> = {}, seeds = MODEL_SEEDS, scale = 1): Summary {
  const runs = Array.from({ length: seeds }, (_, seed) => runModel(strategy, scenario, over, scale, undefined, seed));
  const p99s = runs.map((r) => r.p99);
  const least = runs.map(leastHealthyShares);
  return {
    p50: median(runs.map((r) => r.p50)),
    p99: median(p99s),
    p99Min: Math.min(...p99s),
    p99Max: Math.max(...p99s),
    p99Settled: median(runs.map((r) => r.p99Settled)),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    hitRate: median(runs.map((r) => r.hitRate)),
    shares: runs[0]!.shares.map((_, k) => [0, 1, 2, 3].map((w) => runs.reduce((n, r) => n + r.shares[k]![w]!, 0) / runs.length)),
    leastHealthy: [0, 1, 2].map((w) => median(least.map((l) => l[w]!))),
    seedsBelow5: least.filter((l) => l.some((x) => x < 0.05)).length,
    seedsBelow5ByWindow: [0, 1, 2].map((w) => least.filter((l) => l[w]! < 0.05).length),
  };
}

export function modelTable(seeds = MODEL_SEEDS): string {
  const lines = [
    `| scenario | strategy | TTFT p50 (ms) | TTFT p99 (ms) | p99 range over ${seeds} seeds | p99 outside cold start and slowdown onset | errors | prefix hit rate | worker shares 1× / 2× / 4× / 2×→slow: whole run | before | during | after |`,
    '|---|---|---:|---:|---:|---:|---:|---:|---|---|---|---|',
  ];
  for (const scenario of ['steady', 'bursty'] as const) {
    for (const strategy of STRATEGIES) {
      const r = summarize(strategy, scenario, {}, seeds);
      const share = (w: number): string => r.shares.map((s) => pct(s[w]!)).join(' / ');
      lines.push(
        `| ${scenario} | ${strategy === 'scored' ? '**ours (scored)**' : strategy} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${r.p99Min.toFixed(0)}–${r.p99Max.toFixed(0)} | ${r.p99Settled.toFixed(0)} | ${r.errors} | ${pct(r.hitRate)} | ${share(0)} | ${share(1)} | ${share(2)} | ${share(3)} |`,
      );
    }
  }
  return lines.join('\n');
}

/** One knob at a time around the defaults: what each default buys (medians over the seeds). */
export function sweepTable(seeds = MODEL_SEEDS): string {
  const w = DEFAULT_ROUTING.weights;
  const variations: Array<[string, Partial<RoutingSettings>]> = [
    ['defaults', {}],
    ['ROUTING_EXPLORATION=0', { exploration: 0 }],
    ['ROUTING_EXPLORATION=0.2', { exploration: 0.2 }],
    ['silence by the clock: ROUTING_PROBE_AFTER_REQUESTS=0, ROUTING_PROBE_AFTER_MS=2000, no ceiling (before)', { silence: { afterRequests: 0, afterMs: 2000, maxMs: 0 } }],
    ['ROUTING_BAND=0 (argmin)', { band: 0 }],
    ['ROUTING_BAND=0.3', { band: 0.3 }],
    ['ROUTING_EWMA_ALPHA=0.3', { ewmaAlpha: 0.3 }],
    ['ROUTING_EWMA_ALPHA=0.7', { ewmaAlpha: 0.7 }],
    ['ROUTING_WEIGHT_PREFIX=0 (no affinity)', { weights: { ...w, prefix: 0 } }],
    ['ROUTING_WEIGHT_EVICTION=0 (no eviction charge)', { weights: { ...w, eviction: 0 } }],
    ['ROUTING_WEIGHT_EVICTION=2', { weights: { ...w, eviction: 2 } }],
    ['ROUTING_WEIGHT_LOAD=0 (no queue estimate)', { weights: { ...w, load: 0 } }],
    ['ROUTING_WEIGHT_LOAD=1.5', { weights: { ...w, load: 1.5 } }],
    ['ROUTING_WEIGHT_THROUGHPUT=0.5', { weights: { ...w, throughput: 0.5 } }],
    ['ROUTING_WEIGHT_THROUGHPUT=0', { weights: { ...w, throughput: 0 } }],
  ];
  const lines = [
    `| ours with | steady p50 / p99 (ms) | bursty p50 / p99 (ms) | p99 outside cold start and onset, steady / bursty | hit rate steady / bursty |`,
    '|---|---:|---:|---:|---:|',
  ];
  for (const [name, over] of variations) {
    const s = summarize('scored', 'steady', over, seeds);
    const b = summarize('scored', 'bursty', over, seeds);
    lines.push(
      `| ${name} | ${s.p50.toFixed(0)} / ${s.p99.toFixed(0)} | ${b.p50.toFixed(0)} / ${b.p99.toFixed(0)} | ${s.p99Settled.toFixed(0)} / ${b.p99Settled.toFixed(0)} | ${pct(s.hitRate)} / ${pct(b.hitRate)} |`,
    );
  }
  return lines.join('\n');
}

/**
 * `--set a=1,silence.afterRequests=24`: settings over the defaults (numbers; `weights.*` and
 * `silence.*` go into those objects), for trying a variation from the command line.
 */
export function parseOverrides(text: string | undefined): Partial<RoutingSettings> {
  const over: Record<string, unknown> = {};
  for (const pair of (text ?? '').split(',').filter(Boolean)) {
    const [path, value] = pair.split('=') as [string, string | undefined];
    const [head, field] = path.split('.') as [keyof RoutingSettings, string | undefined];
    const v = Number(value);
    if (value === undefined || !Number.isFinite(v)) throw new Error(`--set ${pair}: expected name=number`);
    if (field === undefined) over[head] = v;
    else over[head] = { ...(DEFAULT_ROUTING[head] as object), ...(over[head] as object | undefined), [field]: v };
  }
  return over as Partial<RoutingSettings>;
}

/**
 * One line per scale × scenario × strategy: medians over the seeds (p50, p99, p99 outside cold
 * start and onset, hit rate) and the shares of the degraded worker (during / after the slowdown)
 * and of the least-used healthy worker (whole run): for comparing a variation against the oracle.
 */
export function compareTable(options: { scales: number[]; scenarios: Scenario[]; strategies: readonly Strategy[]; seeds: number; over: Partial<RoutingSettings> }): string {
  const lines = [
    `| scale | scenario | strategy | p50 | p99 | p99 settled | hit rate | degraded share during / after | least healthy share (run) | least healthy share before / during / after | seeds with a healthy worker < 5 % | of them before / during / after | (medians over ${options.seeds} seeds) |`,
    '|---:|---|---|---:|---:|---:|---:|---|---:|---|---:|---|---|',
  ];
  for (const scale of options.scales) {
    for (const scenario of options.scenarios) {
      for (const strategy of options.strategies) {
        const r = summarize(strategy, scenario, strategy === 'scored' ? options.over : {}, options.seeds, scale);
        const degraded = WORKERS.findIndex((w) => w.degrades);
        const healthy = Math.min(...r.shares.filter((_, k) => k !== degraded).map((s) => s[0]!));
        lines.push(
          `| ${scale} | ${scenario} | ${strategy} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${r.p99Settled.toFixed(0)} | ${pct(r.hitRate)} | ${pct(r.shares[degraded]![2]!)} / ${pct(r.shares[degraded]![3]!)} | ${pct(healthy)} | ${r.leastHealthy.map(pct).join(' / ')} | ${r.seedsBelow5} | ${r.seedsBelow5ByWindow.join(' / ')} | |`,
        );
      }
    }
  }
  return lines.join('\n');
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      sweep: { type: 'boolean', default: false },
      scale: { type: 'string' },
      seeds: { type: 'string' },
      scenarios: { type: 'string' },
      strategies: { type: 'string' },
      set: { type: 'string' },
    },
    allowPositionals: false,
  });
  if (values.scale || values.seeds || values.scenarios || values.strategies || values.set) {
    const list = (x: string | undefined): string[] | undefined => x?.split(',').filter(Boolean);
    const strategies = list(values.strategies) ?? ['scored', 'oracle'];
    process.stdout.write(
      `${compareTable({
        scales: (list(values.scale) ?? ['1']).map(Number),
        scenarios: (list(values.scenarios) ?? ['steady', 'bursty']) as Scenario[],
        strategies: STRATEGIES.filter((s) => strategies.includes(s)),
        seeds: Number(values.seeds ?? MODEL_SEEDS),
        over: parseOverrides(values.set),
      })}\n`,
    );
  } else {
    process.stdout.write(`${modelTable()}\n`);
    if (values.sweep) process.stdout.write(`\n${sweepTable()}\n`);
  }
}
