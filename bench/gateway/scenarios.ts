/**
 * The measurements of `npm run bench`, each run against one target at a time: saturation
 * (autocannon, closed loop), fixed request rates (open loop, bench/lib/http-load.ts), TTFT probes,
 * and the memory measurement with many idle streams. Each records its figures into RunResults
 * and returns a one-line summary for the log.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { saturate } from '../lib/autocannon.js';
import { holdStreams, pacedLoad, ttftProbe } from '../lib/http-load.js';
import { cpuMs, rssKb } from '../lib/procs.js';
import { fmt, percentile, sum } from '../lib/stats.js';
import { spec, type Target } from '../lib/targets.js';
import type { GatewayFlags } from './flags.js';
import type { MemoryResult, RunResults } from './results.js';

export interface Scenario {
  id: string;
  run(t: Target): Promise<string>;
}

function cpuOf(t: Target): number[] {
  return t.procs.map((p) => cpuMs(p.pid));
}

function saturation(flags: GatewayFlags, results: RunResults, stream: boolean): Scenario {
  const id = stream ? 'sat-sse' : 'sat-json';
  return {
    id,
    async run(t) {
      const before = cpuOf(t);
      const r = await saturate(spec(t, stream), flags.connections, flags.satSeconds);
      const after = cpuOf(t);
      results.record(t.key, `${id}.rps`, r.rps);
      results.record(t.key, `${id}.p50`, r.p50Ms);
      results.record(t.key, `${id}.p99`, r.p99Ms);
      const perProc = t.procs.map((p, i) => ({ name: p.name, ms: (after[i] ?? Number.NaN) - (before[i] ?? Number.NaN) }));
      if (r.ok > 0 && t.procs.length > 0) {
        results.record(t.key, `${id}.cpu`, sum(perProc.map((p) => p.ms)) / r.ok);
        for (const p of perProc) results.record(t.key, `${id}.cpu.${p.name}`, p.ms / r.ok);
      }
      results.fail(t, r.failed, id, r.failure);
      const cpu = r.ok > 0 ? `; CPU ms/req ${perProc.map((p) => `${p.name} ${fmt(p.ms / r.ok, 3)}`).join(', ')}` : '';
      return `${fmt(r.rps, 0)} req/s, p50 ${fmt(r.p50Ms, 0)} ms, p99 ${fmt(r.p99Ms, 0)} ms${cpu}${r.failed ? `, ${r.failed} FAILED (${r.failure ?? ''})` : ''}`;
    },
  };
}

function paced(flags: GatewayFlags, results: RunResults, rate: number, stream: boolean): Scenario {
  const id = `rate${rate}-${stream ? 'sse' : 'json'}`;
  return {
    id,
    async run(t) {
      const r = await pacedLoad(spec(t, stream), { rate, durationMs: flags.rateSeconds * 1000 });
      const p50 = percentile(r.latenciesMs, 50);
      const p99 = percentile(r.latenciesMs, 99);
      results.record(t.key, `${id}.p50`, p50);
      results.record(t.key, `${id}.p99`, p99);
      results.record(t.key, `${id}.achieved`, r.achievedRps);
      if (stream) {
        results.record(t.key, `${id}.ttft50`, percentile(r.firstDataMs, 50));
        results.record(t.key, `${id}.ttft99`, percentile(r.firstDataMs, 99));
      }
      results.fail(t, r.sent - r.ok, id, r.firstError);
      return (
        `achieved ${fmt(r.achievedRps, 0)} req/s, p50 ${fmt(p50, 2)} ms, p99 ${fmt(p99, 2)} ms` +
        (stream ? `, TTFT p50 ${fmt(percentile(r.firstDataMs, 50), 2)} ms` : '') +
        (r.sent - r.ok ? `, ${r.sent - r.ok} FAILED (${r.firstError ?? ''})` : '')
      );
    },
  };
}

function ttft(flags: GatewayFlags, results: RunResults): Scenario {
  return {
    id: 'ttft',
    async run(t) {
      const r = await ttftProbe(spec(t, true), flags.ttft);
      const figures = {
        seq50: percentile(r.sequentialMs, 50),
        seq99: percentile(r.sequentialMs, 99),
        conc50: percentile(r.concurrentMs, 50),
        conc99: percentile(r.concurrentMs, 99),
      };
      for (const [name, value] of Object.entries(figures)) results.record(t.key, `ttft.${name}`, value);
      results.fail(t, r.failures, 'ttft', r.firstError);
      return (
        `sequential p50 ${fmt(figures.seq50, 2)} ms / p99 ${fmt(figures.seq99, 2)} ms; ` +
        `concurrent(${flags.ttft.concurrency}) p50 ${fmt(figures.conc50, 2)} / p99 ${fmt(figures.conc99, 2)} ms`
      );
    },
  };
}

/** Every measurement of one round, in order. */
export function scenarios(flags: GatewayFlags, results: RunResults): Scenario[] {
  return [
    saturation(flags, results, false),
    saturation(flags, results, true),
    ...flags.rates.flatMap((rate) => [paced(flags, results, rate, false), paced(flags, results, rate, true)]),
    ttft(flags, results),
  ];
}

/**
 * RSS of a fresh target idle, with `streams` open streams (each past its first `data:` byte) and
 * after releasing them; for ours also every process on the path.
 */
export async function measureMemory(t: Target, streams: number, results: RunResults): Promise<MemoryResult> {
  const all = [t.front, ...t.procs.filter((p) => p !== t.front)];
  const rssAll = (): number => sum(all.map((p) => rssKb(p.pid)));
  // Warm the streaming path on this fresh process with a few streams, then let it settle.
  const warm = await holdStreams(spec(t, true), 50, { batch: 50 });
  warm.release();
  await sleep(1_500);
  const idle = rssKb(t.front.pid);
  const pathIdle = rssAll();
  const held = await holdStreams(spec(t, true), streams, { batch: 100, budgetMs: 90_000 });
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
  if (held.failed > 0) results.fail(t, held.failed, 'idle streams', held.firstError);
  const out: MemoryResult = { label: t.label, key: t.key, held: held.held, failed: held.failed, idle, loaded, after: rssKb(t.front.pid) };
  if (t.procs.length > 1) {
    out.pathIdle = pathIdle;
    out.pathLoaded = pathLoaded;
    out.breakdown = breakdown;
  }
  return out;
}
