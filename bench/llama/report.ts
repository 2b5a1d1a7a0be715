/**
 * The report of bench/llama.ts: per model, path and concurrency TTFT p50/p90, decode tok/s p50/p10
 * (the slow tail) and aggregate tok/s, then platform / direct ratios. Percentiles are nearest-rank
 * over the requests of a path × concurrency (bench/lib/stats.ts). `--write-docs` replaces (or
 * appends) only the "## llama.cpp engine: gateway vs direct" section of docs/BENCHMARKS.md.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fmt, percentile, ratio, signed } from '../lib/stats.js';
import type { LlamaFlags } from './flags.js';
import { PARALLEL, WARMUP, type Phase } from './measure.js';
import { CONCURRENCIES, PATH_KEYS, PATH_LABEL, type ModelRun } from './rounds.js';

const DOCS_FILE = 'docs/BENCHMARKS.md';
const DOCS_HEADING = '## llama.cpp engine: gateway vs direct';

/** The markdown section (the same text is printed and, with --write-docs, written). */
export function report(models: readonly ModelRun[], flags: LlamaFlags, loads: readonly number[]): string {
  const modes = [...new Set(models.flatMap((m) => (m.platformMode === undefined ? [] : [m.platformMode])))];
  const out: string[] = [];
  const ttft = (p: Phase | undefined, q: number): number => percentile(p?.samples.map((s) => s.ttftMs) ?? [], q);
  const tps = (p: Phase | undefined, q: number): number => percentile(p?.samples.map((s) => s.decodeTps) ?? [], q);
  out.push(`Command: \`${flags.command}\``);
  out.push('');
  out.push(
    `Host: ${os.cpus().length} vCPU ${os.cpus()[0]?.model ?? ''}, Node ${process.version}, load average (1 min) ${loads.map((l) => fmt(l, 2)).join(' → ')}; ` +
      `threads ${flags.threads}, ${PARALLEL} sequences, temperature 0, ${flags.requests} requests per phase after ${WARMUP} warm-up requests.`,
  );
  out.push(`Platform path: ${modes.join('; ') || 'not run'}.`);
  out.push('');
  out.push('| model | path | concurrency | requests | TTFT p50 (ms) | TTFT p90 (ms) | decode tok/s p50 | decode tok/s p10 | aggregate tok/s |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const m of models) {
    for (const key of PATH_KEYS) {
      for (const c of CONCURRENCIES) {
        const p = m.phases.get(`${key}:${c}`);
        if (!p) continue;
        const requests = `${p.samples.length}${p.failures ? ` (+${p.failures} failed)` : ''}${p.stoppedEarly ? ' ⏱' : ''}`;
        out.push(
          `| ${m.label} | ${PATH_LABEL[key]} | ${c} | ${requests} | ${fmt(ttft(p, 50), 2)} | ${fmt(ttft(p, 90), 2)} | ` +
            `${fmt(tps(p, 50))} | ${fmt(tps(p, 10))} | ${fmt(p.aggregateTps)} |`,
        );
      }
    }
  }
  out.push('');
  out.push('Platform / direct (p50 over p50; TTFT: higher = slower, decode: lower = slower):');
  out.push('');
  out.push(
    '| model | concurrency | TTFT platform/raw | TTFT platform/engine | added TTFT vs raw (ms) | decode platform/raw | decode platform/engine | added time per token vs raw (ms) |',
  );
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const m of models) {
    for (const c of CONCURRENCIES) {
      const raw = m.phases.get(`raw:${c}`);
      const eng = m.phases.get(`engine:${c}`);
      const plat = m.phases.get(`platform:${c}`);
      if (!plat) continue;
      out.push(
        `| ${m.label} | ${c} | ${ratio(ttft(plat, 50), ttft(raw, 50))} | ${ratio(ttft(plat, 50), ttft(eng, 50))} | ` +
          `${signed(ttft(plat, 50) - ttft(raw, 50), 2)} | ${ratio(tps(plat, 50), tps(raw, 50))} | ${ratio(tps(plat, 50), tps(eng, 50))} | ` +
          `${signed(1000 / tps(plat, 50) - 1000 / tps(raw, 50), 3)} |`,
      );
    }
  }
  out.push('');
  for (const m of models) {
    out.push(`- **${m.label}**: \`${m.file}\` (${fmt(m.sizeBytes / 1024 / 1024, 2)} MiB), max_tokens ${m.maxTokens}. ${m.note}`);
    const finishes = new Set<string>();
    const tokens = new Set<number>();
    for (const p of m.phases.values()) {
      for (const s of p.samples) {
        finishes.add(s.finish);
        tokens.add(s.completionTokens);
      }
    }
    out.push(`  - finish reasons seen: ${[...finishes].join(', ') || '—'}; completion tokens per request: ${[...tokens].sort((a, b) => a - b).join(', ') || '—'}.`);
    const texts = [...m.texts.entries()];
    const distinct = new Set(texts.map(([, t]) => t));
    if (texts.length > 1) {
      out.push(
        distinct.size === 1
          ? `  - same greedy text on all ${texts.length} paths (${JSON.stringify(texts[0]?.[1]?.slice(0, 40) ?? '')}${(texts[0]?.[1]?.length ?? 0) > 40 ? '…' : ''}).`
          : `  - ⚠ greedy text DIFFERS between paths: ${texts.map(([k, t]) => `${k}=${JSON.stringify(t.slice(0, 40))}`).join(', ')}`,
      );
    }
    for (const [k, d] of m.describe) out.push(`  - ${PATH_LABEL[k]}: ${d}`);
    for (const e of m.errors) out.push(`  - ⚠ ${e.split('\n')[0]}`);
  }
  out.push('');
  out.push(
    'TTFT = request start → first non-empty content delta at the client (raw: the prompt is rendered before the clock starts). ' +
      'Decode tok/s = (completion tokens − 1) / (end of generation − first content), per request; p10 is the slow tail. ' +
      'Percentiles are nearest-rank over the requests of a path × concurrency (each is a measured request, never interpolated). ' +
      'Added time per token = 1000/decode p50 (platform) − 1000/decode p50 (raw): the per-token cost of the platform path, ' +
      'which matters less the slower the model decodes. ' +
      'Aggregate = completion tokens / wall time of the measured requests. All paths stay loaded and take turns in ' +
      `${flags.rounds} rounds per concurrency with a rotating order, so they never run at the same time, but other work on the host ` +
      'competes with all of them (see the load average). ⏱ = stopped by the time budget before all requests ran.',
  );
  return out.join('\n');
}

/** Replaces (or appends) our section of docs/BENCHMARKS.md; never touches anything else. */
export function writeDocs(root: string, section: string, log: (msg: string) => void): void {
  const file = path.join(root, DOCS_FILE);
  if (!existsSync(file)) {
    log(`${DOCS_FILE} does not exist; not writing`);
    return;
  }
  const current = readFileSync(file, 'utf8');
  const body = `${DOCS_HEADING}\n\n${section}\n`;
  const start = current.indexOf(`\n${DOCS_HEADING}\n`);
  let next: string;
  if (start < 0) {
    next = `${current.trimEnd()}\n\n${body}`;
  } else {
    const after = current.indexOf('\n## ', start + DOCS_HEADING.length + 1);
    next = `${current.slice(0, start + 1)}${body}${after < 0 ? '' : `\n${current.slice(after + 1)}`}`;
  }
  writeFileSync(file, next);
  log(`wrote the "${DOCS_HEADING}" section of ${DOCS_FILE}`);
}
