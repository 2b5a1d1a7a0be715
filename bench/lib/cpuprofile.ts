/**
 * A small analyzer for V8 .cpuprofile files (node --cpu-prof): self time and inclusive time per
 * function (aggregated over all call sites), and self time per package / area.
 *
 * Sample i is charged timeDeltas[i + 1] (the time until the next sample), like Chrome DevTools.
 *
 * CLI: [FROM_MS=… TO_MS=…] node --import tsx bench/lib/cpuprofile.ts <file.cpuprofile> [top]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionTime {
  name: string;
  location: string;
  area: string;
  selfMs: number;
  totalMs: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  /** totalMs - idleMs. Percentages below are of this. */
  busyMs: number;
  gcMs: number;
  functions: FunctionTime[];
  areas: Array<{ area: string; selfMs: number }>;
}

const SPECIAL = new Set(['(root)', '(program)', '(idle)', '(garbage collector)']);

/** Where a script lives: a package name, `node:internal`, or a project-relative file. */
export function areaOf(url: string, root: string): string {
  if (url === '') return '(native/VM)';
  if (url.startsWith('node:')) return 'node internals';
  const file = url.startsWith('file://') ? decodeURIComponent(new URL(url).pathname) : url;
  const nm = file.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = file.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1] ?? ''}` : (rest[0] ?? file);
  }
  const rel = path.relative(root, file);
  // Compiled code (dist/gateway/src/x.js) belongs to the same area as its source.
  return rel.startsWith('..') ? file : rel.replace(/^dist\//, '').split(path.sep).slice(0, 2).join('/');
}

function locationOf(frame: CallFrame, root: string): string {
  if (frame.url === '') return '';
  let file = frame.url.startsWith('file://') ? decodeURIComponent(new URL(frame.url).pathname) : frame.url;
  const nm = file.lastIndexOf('/node_modules/');
  if (nm >= 0) file = file.slice(nm + '/node_modules/'.length);
  else if (!file.startsWith('node:')) file = path.relative(root, file);
  // tsx-transformed project files report line 0 for every function: the file alone is honest.
  return frame.lineNumber === 0 && file.endsWith('.ts') ? file : `${file}:${frame.lineNumber + 1}`;
}

/**
 * @param window only samples taken between fromMs and toMs after the profile started (e.g. to
 *   leave out process startup and warm-up); default: all.
 */
export function analyzeCpuProfile(profile: CpuProfile, root: string, window: { fromMs?: number; toMs?: number } = {}): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) byId.set(n.id, n);
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const keyOf = (n: ProfileNode): string => `${n.callFrame.functionName}\u0000${n.callFrame.url}\u0000${n.callFrame.lineNumber}`;
  const fns = new Map<string, FunctionTime>();
  const fnOf = (n: ProfileNode): FunctionTime => {
    const key = keyOf(n);
    let f = fns.get(key);
    if (!f) {
      f = {
        name: n.callFrame.functionName || '(anonymous)',
        location: locationOf(n.callFrame, root),
        area: SPECIAL.has(n.callFrame.functionName) ? n.callFrame.functionName : areaOf(n.callFrame.url, root),
        selfMs: 0,
        totalMs: 0,
      };
      fns.set(key, f);
    }
    return f;
  };

  let totalUs = 0;
  let idleUs = 0;
  let gcUs = 0;
  const { samples, timeDeltas } = profile;
  const fromUs = (window.fromMs ?? Number.NEGATIVE_INFINITY) * 1000;
  const toUs = (window.toMs ?? Number.POSITIVE_INFINITY) * 1000;
  let at = 0;
  for (let i = 0; i < samples.length; i++) {
    at += timeDeltas[i] ?? 0;
    if (at < fromUs || at > toUs) continue;
    const us = Math.max(0, timeDeltas[i + 1] ?? 0);
    const node = byId.get(samples[i] ?? -1);
    if (!node || us === 0) continue;
    totalUs += us;
    const name = node.callFrame.functionName;
    if (name === '(idle)') idleUs += us;
    if (name === '(garbage collector)') gcUs += us;
    fnOf(node).selfMs += us / 1000;
    // Inclusive: every distinct function on the stack once (recursion is not double counted).
    const seen = new Set<string>();
    let id: number | undefined = node.id;
    for (let depth = 0; id !== undefined && depth < 10_000; depth++) {
      const n = byId.get(id);
      if (!n) break;
      const key = keyOf(n);
      if (!seen.has(key)) {
        seen.add(key);
        fnOf(n).totalMs += us / 1000;
      }
      id = parent.get(id);
    }
  }

  const areas = new Map<string, number>();
  for (const f of fns.values()) {
    if (f.area === '(idle)' || f.area === '(root)') continue;
    areas.set(f.area, (areas.get(f.area) ?? 0) + f.selfMs);
  }
  return {
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    busyMs: (totalUs - idleUs) / 1000,
    gcMs: gcUs / 1000,
    functions: [...fns.values()].filter((f) => f.name !== '(root)' && f.name !== '(idle)').sort((a, b) => b.selfMs - a.selfMs),
    areas: [...areas.entries()].map(([area, selfMs]) => ({ area, selfMs })).sort((a, b) => b.selfMs - a.selfMs),
  };
}

/** A named cost to call out: functions matched by name (and area), their inclusive time combined. */
export interface WatchItem {
  label: string;
  names: string[];
  /** Only functions whose area matches (package name or project directory). */
  area?: RegExp;
  /** 'sum' for functions that never nest in each other (siblings), 'max' otherwise. Default 'max'. */
  combine?: 'sum' | 'max';
}

export function watchedMs(s: ProfileSummary, w: WatchItem): number {
  const hits = s.functions.filter((f) => w.names.includes(f.name) && (!w.area || w.area.test(f.area))).map((f) => f.totalMs);
  if (hits.length === 0) return 0;
  return w.combine === 'sum' ? hits.reduce((a, b) => a + b, 0) : Math.max(...hits);
}

const pct = (ms: number, of: number): string => (of > 0 ? `${((100 * ms) / of).toFixed(1)}%` : '—');
const esc = (s: string): string => s.replace(/\|/g, '\\|');

/** Markdown: top self-time functions, top areas, and top project functions by inclusive time. */
export function formatProfileMarkdown(s: ProfileSummary, top = 10, watch: WatchItem[] = []): string {
  const lines: string[] = [];
  lines.push(
    `Profile: ${(s.totalMs / 1000).toFixed(1)} s sampled, ${(s.busyMs / 1000).toFixed(1)} s busy (not idle), ` +
      `GC ${pct(s.gcMs, s.busyMs)} of busy. Percentages are of busy time.`,
    '',
    `**Top ${top} functions by self time**`,
    '',
    '| # | function | location | area | self ms | self % | total % |',
    '|---:|---|---|---|---:|---:|---:|',
  );
  s.functions.slice(0, top).forEach((f, i) => {
    lines.push(
      `| ${i + 1} | \`${esc(f.name)}\` | ${esc(f.location) || '—'} | ${esc(f.area)} | ${f.selfMs.toFixed(0)} | ${pct(f.selfMs, s.busyMs)} | ${pct(f.totalMs, s.busyMs)} |`,
    );
  });
  lines.push('', '**Self time by area (package / project directory)**', '', '| area | self ms | self % |', '|---|---:|---:|');
  for (const a of s.areas.slice(0, 12)) lines.push(`| ${esc(a.area)} | ${a.selfMs.toFixed(0)} | ${pct(a.selfMs, s.busyMs)} |`);
  const project = s.functions
    .filter((f) => /^(gateway|lib|gen|services)\//.test(f.area))
    .sort((a, b) => b.totalMs - a.totalMs)
    .slice(0, 10);
  if (project.length > 0) {
    lines.push('', '**Project functions by inclusive time**', '', '| function | location | total % | self % |', '|---|---|---:|---:|');
    for (const f of project) lines.push(`| \`${esc(f.name)}\` | ${esc(f.location)} | ${pct(f.totalMs, s.busyMs)} | ${pct(f.selfMs, s.busyMs)} |`);
  }
  if (watch.length > 0) {
    lines.push('', '**Selected costs (inclusive time of the named functions)**', '', '| cost | functions | inclusive % |', '|---|---|---:|');
    for (const w of watch) lines.push(`| ${esc(w.label)} | ${w.names.map((n) => `\`${esc(n)}\``).join(', ')} | ${pct(watchedMs(s, w), s.busyMs)} |`);
  }
  return lines.join('\n');
}

export function loadCpuProfile(file: string): CpuProfile {
  return JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node --import tsx bench/lib/cpuprofile.ts <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  const summary = analyzeCpuProfile(loadCpuProfile(file), process.cwd(), {
    ...(process.env['FROM_MS'] ? { fromMs: Number(process.env['FROM_MS']) } : {}),
    ...(process.env['TO_MS'] ? { toMs: Number(process.env['TO_MS']) } : {}),
  });
  process.stdout.write(`${formatProfileMarkdown(summary, Number(process.argv[3] ?? 10))}\n`);
}
