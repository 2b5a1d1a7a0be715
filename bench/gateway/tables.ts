/**
 * The markdown tables of the gateway benchmark report: the results (medians of the rounds, with
 * ours / Portkey ratios), the per-round values, our CPU per process and the memory detail.
 */
import { fmt, ratio } from '../lib/stats.js';
import type { TargetKey } from '../lib/targets.js';
import type { GatewayFlags } from './flags.js';
import { TARGET_KEYS, type MemoryResult, type RunResults } from './results.js';

export function resultsTable(flags: GatewayFlags, results: RunResults): string {
  const med = (key: TargetKey, metric: string): number => results.med(key, metric);
  const pair = (key: TargetKey, a: string, b: string, d = 2): string => `${fmt(med(key, a), d)} / ${fmt(med(key, b), d)}`;
  const pairRatio = (a: string, b: string): string => `${ratio(med('ours', a), med('portkey', a))} / ${ratio(med('ours', b), med('portkey', b))}`;
  const added = (key: TargetKey, a: string, b: string, d = 2): string =>
    key === 'mock' ? '0' : `+${fmt(med(key, a) - med('mock', a), d)} / +${fmt(med(key, b) - med('mock', b), d)}`;
  const addedRatio = (a: string, b: string): string => {
    const o = (m: string): number => med('ours', m) - med('mock', m);
    const p = (m: string): number => med('portkey', m) - med('mock', m);
    return `${ratio(o(a), p(a))} / ${ratio(o(b), p(b))}`;
  };
  const overloaded = (key: TargetKey, rate: number, stream: boolean): string => {
    const achieved = med(key, `rate${rate}-${stream ? 'sse' : 'json'}.achieved`);
    return Number.isFinite(achieved) && achieved < rate * 0.95 ? ` ⚠ (achieved ${fmt(achieved, 0)} req/s)` : '';
  };
  const rows: string[] = ['| metric | mock direct | ours | Portkey | ours / Portkey |', '|---|---:|---:|---:|---:|'];
  const row = (metric: string, cell: (k: TargetKey) => string, r: string): void => {
    rows.push(`| ${metric} | ${TARGET_KEYS.map(cell).join(' | ')} | ${r} |`);
  };
  for (const stream of [false, true]) {
    const id = stream ? 'sat-sse' : 'sat-json';
    const name = stream ? 'stream' : 'non-stream';
    row(
      `**${name}: throughput at saturation** (req/s, ${flags.connections} conns, ${flags.satSeconds} s)`,
      (k) => fmt(med(k, `${id}.rps`), 0),
      ratio(med('ours', `${id}.rps`), med('portkey', `${id}.rps`)),
    );
    row(`${name}: latency at saturation p50 / p99 (ms${stream ? ', whole stream' : ''})`, (k) => pair(k, `${id}.p50`, `${id}.p99`, 0), pairRatio(`${id}.p50`, `${id}.p99`));
  }
  for (const rate of flags.rates) {
    const id = `rate${rate}-json`;
    row(`non-stream @ ${rate} req/s: latency p50 / p99 (ms)`, (k) => pair(k, `${id}.p50`, `${id}.p99`) + overloaded(k, rate, false), pairRatio(`${id}.p50`, `${id}.p99`));
    row(`non-stream @ ${rate} req/s: **added latency vs mock** p50 / p99 (ms)`, (k) => added(k, `${id}.p50`, `${id}.p99`), addedRatio(`${id}.p50`, `${id}.p99`));
  }
  for (const rate of flags.rates) {
    const id = `rate${rate}-sse`;
    row(`stream @ ${rate} req/s: TTFT p50 / p99 (ms)`, (k) => pair(k, `${id}.ttft50`, `${id}.ttft99`) + overloaded(k, rate, true), pairRatio(`${id}.ttft50`, `${id}.ttft99`));
    row(`stream @ ${rate} req/s: **added TTFT vs mock** p50 / p99 (ms)`, (k) => added(k, `${id}.ttft50`, `${id}.ttft99`), addedRatio(`${id}.ttft50`, `${id}.ttft99`));
    row(`stream @ ${rate} req/s: whole stream p50 / p99 (ms)`, (k) => pair(k, `${id}.p50`, `${id}.p99`), pairRatio(`${id}.p50`, `${id}.p99`));
  }
  const { sequential, concurrent, concurrency } = flags.ttft;
  row(`TTFT, ${sequential} sequential: p50 / p99 (ms)`, (k) => pair(k, 'ttft.seq50', 'ttft.seq99'), pairRatio('ttft.seq50', 'ttft.seq99'));
  row(`**TTFT overhead vs mock**, sequential p50 / p99 (ms)`, (k) => added(k, 'ttft.seq50', 'ttft.seq99'), addedRatio('ttft.seq50', 'ttft.seq99'));
  row(`TTFT, ${concurrent} at concurrency ${concurrency}: p50 / p99 (ms)`, (k) => pair(k, 'ttft.conc50', 'ttft.conc99'), pairRatio('ttft.conc50', 'ttft.conc99'));
  row(`**TTFT overhead vs mock**, concurrency ${concurrency} p50 / p99 (ms)`, (k) => added(k, 'ttft.conc50', 'ttft.conc99'), addedRatio('ttft.conc50', 'ttft.conc99'));
  row(
    'proxy CPU per request at saturation, non-stream / stream (ms, all proxy processes)',
    (k) => (k === 'mock' ? '—' : pair(k, 'sat-json.cpu', 'sat-sse.cpu')),
    pairRatio('sat-json.cpu', 'sat-sse.cpu'),
  );
  if (results.memory.length > 0) memoryRows(flags.idleStreams, results, row);
  row('failed requests (all runs)', (k) => String(results.failed(k)), '');
  return rows.join('\n');
}

type Row = (metric: string, cell: (k: TargetKey) => string, r: string) => void;

function memoryRows(streams: number, results: RunResults, row: Row): void {
  const mem = (k: TargetKey): MemoryResult | undefined => results.memoryOf(k);
  row(
    `front process RSS idle → with ${streams} open streams (MiB)`,
    (k) => {
      const m = mem(k);
      return m ? `${fmt(m.idle / 1024, 0)} → ${fmt(m.loaded / 1024, 0)}${m.held < streams ? ` ⚠ (${m.held} held)` : ''}` : '—';
    },
    ratio(mem('ours')?.loaded ?? Number.NaN, mem('portkey')?.loaded ?? Number.NaN),
  );
  const perStream = (m: MemoryResult | undefined): number => (m ? (m.loaded - m.idle) / Math.max(1, m.held) : Number.NaN);
  row('front process RSS per open stream (KiB)', (k) => fmt(perStream(mem(k)), 1), ratio(perStream(mem('ours')), perStream(mem('portkey'))));
  const o = mem('ours');
  if (o?.pathIdle !== undefined && o.pathLoaded !== undefined) {
    row(
      `whole proxy path RSS idle → ${streams} streams (MiB; ours = gateway+auth+quota+worker)`,
      (k) => {
        const m = mem(k);
        if (!m || k === 'mock') return '—';
        return `${fmt((m.pathIdle ?? m.idle) / 1024, 0)} → ${fmt((m.pathLoaded ?? m.loaded) / 1024, 0)}`;
      },
      ratio(o.pathLoaded, mem('portkey')?.loaded ?? Number.NaN),
    );
  }
}

/** Per-round values of the headline metrics, to show the spread behind the medians. */
export function perRoundTable(flags: GatewayFlags, results: RunResults): string {
  const metrics: Array<[string, string, number]> = [
    ['sat-json.rps', 'non-stream saturation req/s', 0],
    ['sat-sse.rps', 'stream saturation req/s', 0],
    ...flags.rates.map((rate): [string, string, number] => [`rate${rate}-json.p50`, `non-stream @ ${rate} req/s p50 ms`, 2]),
    ...flags.rates.map((rate): [string, string, number] => [`rate${rate}-sse.ttft50`, `stream @ ${rate} req/s TTFT p50 ms`, 2]),
    ['ttft.seq50', 'TTFT sequential p50 ms', 2],
    ['ttft.conc50', `TTFT concurrency ${flags.ttft.concurrency} p50 ms`, 2],
  ];
  const lines = ['| metric (round 1 / 2 / …) | mock direct | ours | Portkey |', '|---|---:|---:|---:|'];
  for (const [key, label, d] of metrics) {
    const cell = (k: TargetKey): string => results.rounds(k, key).map((v) => fmt(v, d)).join(' / ') || '—';
    lines.push(`| ${label} | ${TARGET_KEYS.map(cell).join(' | ')} |`);
  }
  return lines.join('\n');
}

export function cpuTable(results: RunResults): string {
  const med = (key: TargetKey, metric: string): string => fmt(results.med(key, metric), 3);
  const lines = ['| process | non-stream ms/req | stream ms/req |', '|---|---:|---:|'];
  for (const n of ['gateway', 'auth', 'quota', 'inference']) lines.push(`| ${n} | ${med('ours', `sat-json.cpu.${n}`)} | ${med('ours', `sat-sse.cpu.${n}`)} |`);
  lines.push(`| **ours total** | ${med('ours', 'sat-json.cpu')} | ${med('ours', 'sat-sse.cpu')} |`);
  lines.push(`| Portkey | ${med('portkey', 'sat-json.cpu')} | ${med('portkey', 'sat-sse.cpu')} |`);
  return lines.join('\n');
}

export function memoryTable(streams: number, memory: readonly MemoryResult[]): string {
  const lines = ['| target | streams held | RSS idle → loaded → after release (MiB) | per process with streams held |', '|---|---:|---|---|'];
  for (const m of memory) {
    lines.push(`| ${m.label} | ${m.held}/${streams} | ${fmt(m.idle / 1024, 0)} → ${fmt(m.loaded / 1024, 0)} → ${fmt(m.after / 1024, 0)} | ${m.breakdown ?? '—'} |`);
  }
  return lines.join('\n');
}
