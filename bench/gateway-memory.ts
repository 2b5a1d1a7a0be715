/**
 * Gateway memory per idle open stream, measured on its own: the platform as `npm run bench`'s
 * memory phase starts it (compiled gateway → auth + quota → openai-engine worker → a mock that
 * sends one token and then holds the stream for 60 s), N streams opened and held past their first
 * `data:` byte, and per stream:
 *  - RSS delta of the gateway process, read as the bench reads it (no forced GC, 1.5 s settle);
 *  - after a forced full GC in the gateway: RSS delta, V8 heap used and total deltas, and the
 *    delta of memory outside the heap that JavaScript objects hold (Buffers: `external`).
 * With --snapshot it first runs one extra round per checkout (not counted: writing a snapshot
 * grows the process) that writes a heap snapshot of the idle and of the loaded gateway into
 * <dir>/<checkout index>/ and prints what the streams hold: the new objects by nearest per-stream
 * owner (the HTTP response, a grpc-js call object, a suspended async function…), the constructors
 * whose instances grew the most (count × self size, per stream), and the retained size (dominator
 * tree) of the largest per-stream roots.
 *
 * The forced GC and the snapshots come from a preload given to the gateway only through
 * NODE_OPTIONS (this benchmark's, never the platform's own start): on SIGUSR2 it collects garbage,
 * optionally writes a snapshot, and answers with process.memoryUsage() in a file.
 *
 *   node --import tsx bench/gateway-memory.ts [--streams=1000] [--rounds=3] [--snapshot=<dir>]
 *        [--roots=<checkout>,<checkout>]   # alternate rounds between checkouts (old vs new)
 *        [--prompt-chars=8192]              # a longer user message (how per-stream memory scales with it)
 *
 * Each checkout in --roots must have node_modules; its dist/ is built when a source changed.
 * No assertions: this prints figures.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openaiEngine } from './gateway/context.js';
import { holdStreams, type RequestSpec } from './lib/http-load.js';
import { ChildProcesses, rssKb, waitUntil, type Proc } from './lib/procs.js';
import { fmt, median } from './lib/stats.js';
import { spec, startMock, startOurPlatform, writeBenchTiers } from './lib/targets.js';

interface Flags {
  streams: number;
  rounds: number;
  /** Directory for the heap snapshots of one extra round per checkout (not counted in the medians). */
  snapshot: string | undefined;
  roots: string[];
  top: number;
  /** Length of the user message (0: the bench's own short prompt). */
  promptChars: number;
}

function parseFlags(argv: string[]): Flags {
  const here = path.resolve(import.meta.dirname, '..');
  const flags: Flags = { streams: 1000, rounds: 3, snapshot: undefined, roots: [here], top: 25, promptChars: 0 };
  for (const arg of argv) {
    const [key, value = ''] = arg.replace(/^--/, '').split('=', 2) as [string, string?];
    if (key === 'streams') flags.streams = Number(value);
    else if (key === 'rounds') flags.rounds = Number(value);
    else if (key === 'top') flags.top = Number(value);
    else if (key === 'prompt-chars') flags.promptChars = Number(value);
    else if (key === 'snapshot') flags.snapshot = path.resolve(value || 'gateway-memory-snapshots');
    else if (key === 'roots') flags.roots = value.split(',').map((r) => path.resolve(r));
    else throw new Error(`unknown flag ${arg}`);
  }
  if (!(flags.promptChars >= 0)) throw new Error('--prompt-chars must not be negative');
  if (!(flags.streams > 0 && flags.rounds >= 0 && flags.top > 0)) throw new Error('--streams and --top must be positive, --rounds not negative');
  return flags;
}

/**
 * The gateway-only preload: SIGUSR2 → read <dir>/request.json ({ id, snapshot? }), two full GCs,
 * optionally a heap snapshot, then <dir>/reply-<id>.json with process.memoryUsage().
 */
const PROBE_PRELOAD =
  'data:text/javascript,' +
  encodeURIComponent(
    "import v8 from 'node:v8'; import vm from 'node:vm'; import fs from 'node:fs';" +
      "v8.setFlagsFromString('--expose-gc'); const gc = vm.runInNewContext('gc');" +
      'const dir = process.env.MEMPROBE_DIR;' +
      "process.on('SIGUSR2', () => {" +
      "  const req = JSON.parse(fs.readFileSync(dir + '/request.json', 'utf8'));" +
      '  gc(); gc();' +
      '  const usage = process.memoryUsage();' +
      '  if (req.snapshot) v8.writeHeapSnapshot(req.snapshot);' +
      "  fs.writeFileSync(dir + '/reply-' + req.id + '.json', JSON.stringify(usage));" +
      '});',
  ).replace(/'/g, '%27'); // NODE_OPTIONS treats quotes specially

interface Usage {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
}

/** The bench's streaming request with a user message of `chars` characters instead (0: unchanged). */
function withPrompt(request: RequestSpec, chars: number): RequestSpec {
  if (chars === 0) return request;
  const body = JSON.parse(request.body) as { messages: Array<{ role: string; content: string }> };
  const words = 'the quick brown fox jumps over the lazy dog '.repeat(Math.ceil(chars / 44)).slice(0, chars);
  body.messages = [{ role: 'user', content: words }];
  return { ...request, body: JSON.stringify(body) };
}

let probeSeq = 0;
/** Forced GC in the gateway, optionally a snapshot; its memoryUsage() after the GC. */
async function probe(gateway: Proc, dir: string, snapshot?: string): Promise<Usage> {
  const id = ++probeSeq;
  writeFileSync(path.join(dir, 'request.json'), JSON.stringify({ id, snapshot }));
  gateway.child.kill('SIGUSR2');
  const reply = path.join(dir, `reply-${id}.json`);
  await waitUntil(() => existsSync(reply) && statSync(reply).size > 0, 180_000, 'the gateway memory probe', 100);
  return JSON.parse(readFileSync(reply, 'utf8')) as Usage;
}

interface Round {
  root: string;
  held: number;
  failed: number;
  firstError: string | undefined;
  /** KiB per stream. */
  rssBench: number;
  rssGc: number;
  heapGc: number;
  /** Heap pages V8 holds (used or not), after the GC. */
  heapTotalGc: number;
  externalGc: number;
}

async function oneRound(children: ChildProcesses, root: string, flags: Flags, work: string, snapDir: string | undefined): Promise<Round> {
  const host = { root, children };
  const dir = mkdtempSync(path.join(work, 'round-'));
  const probeDir = path.join(dir, 'probe');
  mkdirSync(probeDir);
  const slow = await startMock(host, { tokens: 4, interTokenMs: 60_000 }, 'mock (slow)');
  try {
    const ours = await startOurPlatform({
      host,
      dir,
      tiersFile: writeBenchTiers(root, dir),
      inferenceEnv: openaiEngine(slow.url),
      capacity: flags.streams + 200,
      env: { gateway: { NODE_OPTIONS: `--import=${PROBE_PRELOAD}`, MEMPROBE_DIR: probeDir } },
    });
    try {
      const s = withPrompt(spec(ours.target, true), flags.promptChars);
      // As the bench's memory phase: warm the streaming path, let it settle, then measure.
      (await holdStreams(s, 50, { batch: 50 })).release();
      await sleep(1_500);
      const pid = ours.gateway.pid;
      const idleRss = rssKb(pid);
      const idle = await probe(ours.gateway, probeDir, snapDir ? path.join(snapDir, 'idle.heapsnapshot') : undefined);
      const idleRssGc = rssKb(pid);
      const held = await holdStreams(s, flags.streams, { batch: 100, budgetMs: 90_000 });
      try {
        await sleep(1_500);
        const loadedRss = rssKb(pid);
        const loaded = await probe(ours.gateway, probeDir, snapDir ? path.join(snapDir, 'loaded.heapsnapshot') : undefined);
        const loadedRssGc = rssKb(pid);
        const n = Math.max(1, held.held);
        return {
          root,
          held: held.held,
          failed: held.failed,
          firstError: held.firstError,
          rssBench: (loadedRss - idleRss) / n,
          rssGc: (loadedRssGc - idleRssGc) / n,
          heapGc: (loaded.heapUsed - idle.heapUsed) / 1024 / n,
          heapTotalGc: (loaded.heapTotal - idle.heapTotal) / 1024 / n,
          // `external` includes the array buffers.
          externalGc: (loaded.external - idle.external) / 1024 / n,
        };
      } finally {
        held.release();
      }
    } finally {
      await ours.target.stop();
    }
  } finally {
    await slow.target.stop();
  }
}

// --- heap snapshot analysis -------------------------------------------------------------------

interface Snapshot {
  nodeFields: number;
  nodes: Uint32Array | number[];
  edges: number[];
  strings: string[];
  typeNames: string[];
  edgeFields: number;
  edgeTypes: string[];
  firstEdge: Uint32Array;
  nodeCount: number;
}

function loadSnapshot(file: string): Snapshot {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
    nodes: number[];
    edges: number[];
    strings: string[];
  };
  const meta = raw.snapshot.meta;
  const nodeFields = meta.node_fields.length;
  const nodeCount = raw.nodes.length / nodeFields;
  const edgeCountAt = meta.node_fields.indexOf('edge_count');
  const firstEdge = new Uint32Array(nodeCount + 1);
  for (let i = 0, e = 0; i < nodeCount; i++) {
    firstEdge[i] = e;
    e += (raw.nodes[i * nodeFields + edgeCountAt] ?? 0) * meta.edge_fields.length;
    if (i === nodeCount - 1) firstEdge[nodeCount] = e;
  }
  return {
    nodeFields,
    nodes: raw.nodes,
    edges: raw.edges,
    strings: raw.strings,
    typeNames: meta.node_types[0],
    edgeFields: meta.edge_fields.length,
    edgeTypes: meta.edge_types[0],
    firstEdge,
    nodeCount,
  };
}

/** "type:name" of a node, with the name shortened (closures and strings vary per instance). */
function classOf(s: Snapshot, i: number): string {
  const type = s.typeNames[s.nodes[i * s.nodeFields] ?? 0] ?? '?';
  const name = s.strings[s.nodes[i * s.nodeFields + 1] ?? 0] ?? '';
  if (type === 'string' || type === 'concatenated string' || type === 'sliced string') return `(${type})`;
  if (type === 'number') return '(heap number)';
  return `${type}:${name.length > 60 ? `${name.slice(0, 57)}...` : name}`;
}

const selfSize = (s: Snapshot, i: number): number => s.nodes[i * s.nodeFields + 3] ?? 0;

function aggregate(s: Snapshot): Map<string, { count: number; size: number }> {
  const out = new Map<string, { count: number; size: number }>();
  for (let i = 0; i < s.nodeCount; i++) {
    const k = classOf(s, i);
    const a = out.get(k) ?? { count: 0, size: 0 };
    a.count += 1;
    a.size += selfSize(s, i);
    out.set(k, a);
  }
  return out;
}

/**
 * Retained size of every node: immediate dominators (Cooper–Harvey–Kennedy, iterative over a
 * reverse postorder from the root; weak edges ignored), then self sizes summed up the tree.
 */
function retainedSizes(s: Snapshot): { retained: Float64Array; idom: Int32Array } {
  const n = s.nodeCount;
  const weak = s.edgeTypes.indexOf('weak');
  const toNode = (e: number): number => (s.edges[e + 2] ?? 0) / s.nodeFields;
  const isWeak = (e: number): boolean => s.edges[e] === weak;
  // Iterative DFS postorder from node 0 (the synthetic root).
  const order = new Int32Array(n).fill(-1);
  const post: number[] = [];
  const stack: number[] = [0];
  const cursor = new Uint32Array(n);
  order[0] = 0;
  for (let i = 0; i < n; i++) cursor[i] = s.firstEdge[i] ?? 0;
  while (stack.length > 0) {
    const v = stack[stack.length - 1] ?? 0;
    const end = s.firstEdge[v + 1] ?? 0;
    let pushed = false;
    while ((cursor[v] ?? 0) < end) {
      const e = cursor[v] ?? 0;
      cursor[v] = e + s.edgeFields;
      if (isWeak(e)) continue;
      const w = toNode(e);
      if (order[w] === -1) {
        order[w] = 0;
        stack.push(w);
        pushed = true;
        break;
      }
    }
    if (!pushed) {
      stack.pop();
      post.push(v);
    }
  }
  const postIndex = new Int32Array(n).fill(-1);
  post.forEach((v, i) => (postIndex[v] = i));
  // Predecessors (reachable ones only).
  const predCount = new Uint32Array(n + 1);
  for (let v = 0; v < n; v++) {
    if (postIndex[v] === -1) continue;
    for (let e = s.firstEdge[v] ?? 0; e < (s.firstEdge[v + 1] ?? 0); e += s.edgeFields) if (!isWeak(e)) predCount[toNode(e) + 1]! += 1;
  }
  for (let i = 0; i < n; i++) predCount[i + 1]! += predCount[i] ?? 0;
  const preds = new Int32Array(predCount[n] ?? 0);
  const fill = predCount.slice();
  for (let v = 0; v < n; v++) {
    if (postIndex[v] === -1) continue;
    for (let e = s.firstEdge[v] ?? 0; e < (s.firstEdge[v + 1] ?? 0); e += s.edgeFields) {
      if (isWeak(e)) continue;
      const w = toNode(e);
      preds[fill[w]!++] = v;
    }
  }
  const idom = new Int32Array(n).fill(-1);
  idom[0] = 0;
  const intersect = (a: number, b: number): number => {
    while (a !== b) {
      while ((postIndex[a] ?? 0) < (postIndex[b] ?? 0)) a = idom[a] ?? 0;
      while ((postIndex[b] ?? 0) < (postIndex[a] ?? 0)) b = idom[b] ?? 0;
    }
    return a;
  };
  for (let changed = true, pass = 0; changed && pass < 50; pass++) {
    changed = false;
    for (let i = post.length - 2; i >= 0; i--) {
      const v = post[i] ?? 0;
      let d = -1;
      for (let p = predCount[v] ?? 0; p < (predCount[v + 1] ?? 0); p++) {
        const u = preds[p] ?? 0;
        if (idom[u] === -1) continue;
        d = d === -1 ? u : intersect(u, d);
      }
      if (d !== -1 && idom[v] !== d) {
        idom[v] = d;
        changed = true;
      }
    }
  }
  const retained = new Float64Array(n);
  for (const v of post) retained[v] = (retained[v] ?? 0) + selfSize(s, v);
  for (const v of post) if (v !== 0 && (idom[v] ?? -1) >= 0) retained[idom[v] ?? 0] = (retained[idom[v] ?? 0] ?? 0) + (retained[v] ?? 0);
  // The loop above adds children after their own subtree is complete: post is children-first.
  return { retained, idom };
}

/**
 * The objects a stream holds, by owner: every object of the loaded heap that was not in the idle
 * one (snapshot ids are stable within a process), attributed to the nearest per-stream owner
 * (OWNERS; a suspended async function by its name) found by a breadth-first walk from all owners
 * at once; weak edges are not followed. Shared objects go to whichever owner reaches them first,
 * so the split is approximate; the total is exact.
 */
const OWNERS = [
  'ServerResponse',
  'IncomingMessage',
  'Socket',
  'HTTPParser',
  'ClientHttp2Stream',
  'Http2SubchannelCall',
  'LoadBalancingCall',
  'RetryingCall',
  'ResolvingCall',
  'BaseStreamingInterceptingCall',
  'ClientReadableStreamImpl',
  'ServerStream',
  'Metadata',
  'readableToAsyncIterable',
  'serverStreamingMethod',
  'relay',
  'Generator',
  'AbortController',
  'Listener',
  'Timeout',
  'Error',
];

function byOwner(idleSnap: Snapshot, s: Snapshot): Map<string, number> {
  const idField = 2;
  const idleIds = new Set<number>();
  for (let i = 0; i < idleSnap.nodeCount; i++) idleIds.add(idleSnap.nodes[i * idleSnap.nodeFields + idField] ?? -1);
  const fresh = new Uint8Array(s.nodeCount);
  for (let i = 0; i < s.nodeCount; i++) if (!idleIds.has(s.nodes[i * s.nodeFields + idField] ?? -1)) fresh[i] = 1;
  const toNode = (e: number): number => (s.edges[e + 2] ?? 0) / s.nodeFields;
  const edgeName = (e: number): string => s.strings[s.edges[e + 1] ?? 0] ?? '';
  const weak = s.edgeTypes.indexOf('weak');
  const shortcut = s.edgeTypes.indexOf('shortcut');
  const nameOf = (i: number): string => s.strings[s.nodes[i * s.nodeFields + 1] ?? 0] ?? '';
  const labels: string[] = [];
  const owner = new Int32Array(s.nodeCount).fill(-1);
  let frontier: number[] = [];
  for (let i = 0; i < s.nodeCount; i++) {
    if (!fresh[i] || s.typeNames[s.nodes[i * s.nodeFields] ?? 0] !== 'object' || !OWNERS.includes(nameOf(i))) continue;
    let label = nameOf(i);
    if (label === 'Generator') {
      let fn = '?';
      for (let e = s.firstEdge[i] ?? 0; e < (s.firstEdge[i + 1] ?? 0); e += s.edgeFields) if (edgeName(e) === 'function') fn = nameOf(toNode(e)) || '(anonymous)';
      label = `async function ${fn}`;
    }
    let k = labels.indexOf(label);
    if (k < 0) k = labels.push(label) - 1;
    owner[i] = k;
    frontier.push(i);
  }
  while (frontier.length > 0) {
    const next: number[] = [];
    for (const v of frontier) {
      for (let e = s.firstEdge[v] ?? 0; e < (s.firstEdge[v + 1] ?? 0); e += s.edgeFields) {
        if (s.edges[e] === weak || s.edges[e] === shortcut) continue;
        const w = toNode(e);
        if (!fresh[w] || owner[w] !== -1) continue;
        owner[w] = owner[v] ?? -1;
        next.push(w);
      }
    }
    frontier = next;
  }
  const out = new Map<string, number>();
  for (let i = 0; i < s.nodeCount; i++) {
    if (!fresh[i]) continue;
    const k = (owner[i] ?? -1) < 0 ? '(no owner: code, native, shared)' : (labels[owner[i] ?? 0] ?? '?');
    out.set(k, (out.get(k) ?? 0) + selfSize(s, i));
  }
  return out;
}

function analyse(snapDir: string, streams: number, top: number): void {
  const idleSnap = loadSnapshot(path.join(snapDir, 'idle.heapsnapshot'));
  const idle = aggregate(idleSnap);
  const loadedSnap = loadSnapshot(path.join(snapDir, 'loaded.heapsnapshot'));
  const loaded = aggregate(loadedSnap);
  const owners = [...byOwner(idleSnap, loadedSnap).entries()].sort((a, b) => b[1] - a[1]);
  const ownedTotal = owners.reduce((t, [, size]) => t + size, 0);
  process.stdout.write(`\nObjects new since idle, by nearest per-stream owner (${streams} streams): ${fmt(ownedTotal / 1024 / streams, 2)} KiB/stream in all\n`);
  process.stdout.write('| owner | KiB / stream |\n|---|---:|\n');
  for (const [k, size] of owners) process.stdout.write(`| ${k} | ${fmt(size / 1024 / streams, 2)} |\n`);
  const rows = [...loaded.entries()]
    .map(([k, a]) => ({ k, dCount: a.count - (idle.get(k)?.count ?? 0), dSize: a.size - (idle.get(k)?.size ?? 0) }))
    .filter((r) => r.dSize > 0)
    .sort((a, b) => b.dSize - a.dSize);
  const total = rows.reduce((t, r) => t + r.dSize, 0);
  process.stdout.write(`\nHeap growth by constructor (self size, loaded − idle; ${streams} streams): ${fmt(total / 1024 / streams, 2)} KiB/stream in all\n`);
  process.stdout.write('| class | Δ count | Δ count / stream | Δ self KiB / stream |\n|---|---:|---:|---:|\n');
  for (const r of rows.slice(0, top)) {
    process.stdout.write(`| \`${r.k}\` | ${r.dCount} | ${fmt(r.dCount / streams, 2)} | ${fmt(r.dSize / 1024 / streams, 3)} |\n`);
  }
  // Retained size per class in the loaded heap, for the classes with about one instance or more per stream.
  const { retained } = retainedSizes(loadedSnap);
  const byClass = new Map<string, { count: number; retained: number }>();
  for (let i = 0; i < loadedSnap.nodeCount; i++) {
    const k = classOf(loadedSnap, i);
    const a = byClass.get(k) ?? { count: 0, retained: 0 };
    a.count += 1;
    a.retained += retained[i] ?? 0;
    byClass.set(k, a);
  }
  const perStream = [...byClass.entries()]
    .filter(([k, a]) => a.count >= streams * 0.9 && k.startsWith('object:'))
    .sort((a, b) => b[1].retained - a[1].retained)
    .slice(0, top);
  process.stdout.write(`\nLargest retainers among objects with ≥ 1 instance per stream (loaded heap; retained sizes overlap):\n`);
  process.stdout.write('| class | count | retained KiB / instance | retained KiB / stream |\n|---|---:|---:|---:|\n');
  for (const [k, a] of perStream) {
    process.stdout.write(`| \`${k}\` | ${a.count} | ${fmt(a.retained / 1024 / a.count, 2)} | ${fmt(a.retained / 1024 / streams, 2)} |\n`);
  }
}

/** A round whose platform failed to start (a port taken meanwhile, a loaded host) is run once more. */
async function retried(round: () => Promise<Round>): Promise<Round> {
  try {
    return await round();
  } catch (err) {
    process.stdout.write(`round failed (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); running it again\n`);
    return round();
  }
}

// --- main -------------------------------------------------------------------------------------

const flags = parseFlags(process.argv.slice(2));
const children = new ChildProcesses();
process.on('SIGINT', () => process.exit(130));
const work = mkdtempSync(path.join(os.tmpdir(), 'xero-gwmem-'));
const rounds: Round[] = [];
try {
  process.stdout.write(`gateway memory per idle stream: ${flags.streams} streams${flags.promptChars ? ` with a ${flags.promptChars}-character prompt` : ''}, ${flags.rounds} round(s) per checkout; load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
  if (flags.snapshot) {
    for (const [i, root] of flags.roots.entries()) {
      const snapDir = path.join(flags.snapshot, String(i));
      mkdirSync(snapDir, { recursive: true });
      const x = await retried(() => oneRound(children, root, flags, work, snapDir));
      process.stdout.write(`snapshot round ${root}: held ${x.held}/${flags.streams}; heap used ${fmt(x.heapGc, 1)} KiB/stream; snapshots in ${snapDir}\n`);
      analyse(snapDir, x.held, flags.top);
    }
  }
  for (let r = 0; r < flags.rounds; r++) {
    for (const root of flags.roots) {
      const x = await retried(() => oneRound(children, root, flags, work, undefined));
      rounds.push(x);
      process.stdout.write(
        `round ${r + 1} ${root}: held ${x.held}/${flags.streams}${x.failed ? ` (${x.failed} failed: ${x.firstError ?? '?'})` : ''}; KiB/stream: RSS ${fmt(x.rssBench, 1)} ` +
          `(after GC ${fmt(x.rssGc, 1)}), heap used ${fmt(x.heapGc, 1)} (total ${fmt(x.heapTotalGc, 1)}), external ${fmt(x.externalGc, 1)}; load ${os.loadavg()[0]?.toFixed(2)}\n`,
      );
    }
  }
  process.stdout.write('\n| checkout | rounds | RSS KiB/stream (as bench) | RSS after GC | heap used after GC | heap total after GC | external (with array buffers) |\n|---|---:|---:|---:|---:|---:|---:|\n');
  for (const root of flags.roots) {
    const mine = rounds.filter((x) => x.root === root);
    const med = (f: (x: Round) => number): string => fmt(median(mine.map(f)), 1);
    process.stdout.write(`| ${root} | ${mine.length} | ${med((x) => x.rssBench)} | ${med((x) => x.rssGc)} | ${med((x) => x.heapGc)} | ${med((x) => x.heapTotalGc)} | ${med((x) => x.externalGc)} |\n`);
  }
  process.stdout.write(`load at end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
process.exit(0);
