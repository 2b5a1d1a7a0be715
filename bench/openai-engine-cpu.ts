/**
 * CPU per streamed generation of the openai engine alone (the inference worker's upstream side:
 * HTTP request, SSE parsing, engine events), without gateway, gRPC or admission, so the figure
 * holds still on a host shared with other work. Each run is a fresh child process
 * (bench/lib/openai-engine-child.ts) in front of one mock upstream (16 tokens) in this process.
 * With `--compare=<path of another checkout>` (e.g. a checkout of main, with node_modules), that
 * checkout's engine is measured too, alternating with this one, and the ratio printed.
 *
 * With `--worker`, the whole inference worker instead (its own process, as `npm start` runs it with
 * the openai engine: gRPC server middleware, Generate, admission, engine): this process drives
 * `Generate` calls over gRPC, holding one `WatchStatus` stream open as a gateway does, and reads
 * the worker's CPU time from /proc. It also prints the worker's idle CPU (ms per second, the
 * status stream still open, no calls). `--rate=N` paces the calls at N per second instead (as
 * bench/cpu-per-request.ts does), where fixed per-call and idle costs weigh more. `--profile=DIR` runs each worker with --cpu-prof into
 * DIR/<checkout>-round<n>/ (summarise one with bench/lib/cpuprofile.ts). `--worker --interleave`
 * starts one worker per checkout at once and drives them in turns, `--count` generations each per
 * round, so both see the same host load (bench/lib/inference-workers-interleaved.ts): the mode to
 * compare checkouts on a shared host.
 *
 *   node --import tsx bench/openai-engine-cpu.ts [--worker [--interleave] [--rate=N] [--profile=DIR]] [--compare=DIR] [--rounds=5] [--count=2000] [--concurrency=16]
 *
 * Prints a markdown table; writes nothing.
 */
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { startMockOpenAI } from '../test/fixtures/mock-openai-server.js';
import { fmt, median } from './lib/stats.js';
import { measureWorker } from './lib/inference-worker-cpu.js';
import { measureWorkersInterleaved } from './lib/inference-workers-interleaved.js';
import { ChildProcesses } from './lib/procs.js';

const { values } = parseArgs({
  options: {
    compare: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    count: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '16' },
    worker: { type: 'boolean', default: false },
    'idle-seconds': { type: 'string', default: '5' },
    profile: { type: 'string' },
    rate: { type: 'string' },
    interleave: { type: 'boolean', default: false },
  },
});
const root = path.resolve(import.meta.dirname, '..');
const roots = values.compare === undefined ? [root] : [root, path.resolve(values.compare)];
const load = os.loadavg()[0] ?? Number.NaN;
const mock = await startMockOpenAI({ tokens: 16, model: 'mock' });
const figures = new Map<string, number[]>(roots.map((r) => [r, []]));
const idle = new Map<string, number[]>(roots.map((r) => [r, []]));
const children = new ChildProcesses();
if (values.worker && values.interleave) {
  try {
    const result = await measureWorkersInterleaved({
      children,
      dirs: roots,
      mockUrl: mock.url,
      count: Number(values.count),
      concurrency: Number(values.concurrency),
      rounds: Number(values.rounds),
      onRound: (r, dir, ms) => process.stderr.write(`round ${r} ${dir}: ${fmt(ms, 3)} ms CPU per generation\n`),
    });
    const lines = [
      `inference workers (openai engine) side by side, CPU ms per streamed generation (16 tokens; median of ${values.rounds} interleaved turns of ${values.count}, ${values.concurrency} at a time); load average at start ${load.toFixed(2)}, at end ${(os.loadavg()[0] ?? Number.NaN).toFixed(2)}`,
      '',
      '| checkout | turns (ms) | median ms/generation | scavenges per 1,000 generations (median) | Generate messages per generation |',
      '|---|---|---:|---:|---:|',
      ...roots.map((dir) => {
        const v = result.msPerRequest.get(dir) ?? [];
        const gc = median(result.scavengesPer1000.get(dir) ?? []);
        return `| ${dir === root ? 'this checkout' : dir} | ${v.map((x) => fmt(x, 3)).join(', ')} | ${fmt(median(v), 3)} | ${fmt(gc, 1)} | ${fmt(result.messagesPerRequest.get(dir) ?? Number.NaN, 2)} |`;
      }),
    ];
    if (roots.length === 2) {
      const [a = [], b = []] = roots.map((d) => result.msPerRequest.get(d) ?? []);
      const ratios = a.map((x, i) => x / (b[i] ?? Number.NaN));
      lines.push('', `this checkout / compared: ${fmt(median(a) / median(b), 2)}× (median of the per-round ratios ${fmt(median(ratios), 2)}×, range ${fmt(Math.min(...ratios), 2)}–${fmt(Math.max(...ratios), 2)})`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await mock.close();
  }
  process.exit(0);
}
try {
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const dir of r % 2 === 0 ? roots : [...roots].reverse()) {
      if (values.worker) {
        const w = await measureWorker({
          children,
          dir,
          mockUrl: mock.url,
          count: Number(values.count),
          concurrency: Number(values.concurrency),
          idleSeconds: Number(values['idle-seconds']),
          rate: values.rate === undefined ? undefined : Number(values.rate),
          profileDir: values.profile === undefined ? undefined : path.resolve(values.profile, `${path.basename(dir)}-round${r + 1}`),
        });
        figures.get(dir)?.push(w.msPerRequest);
        idle.get(dir)?.push(w.idleMsPerSecond);
        process.stderr.write(
          `round ${r + 1} ${dir}: ${fmt(w.msPerRequest, 3)} ms CPU per generation, ${fmt(w.statusPerRequest, 3)} status updates and ${fmt(w.messagesPerRequest, 2)} Generate messages per generation, idle ${fmt(w.idleMsPerSecond, 2)} ms/s\n`,
        );
        continue;
      }
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(root, 'bench/lib/openai-engine-child.ts')], {
        cwd: root,
        env: { ...process.env, ENGINE_ROOT: dir, MOCK_URL: mock.url, COUNT: values.count, CONCURRENCY: values.concurrency },
      });
      const { msPerRequest, tokens } = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { msPerRequest: number; tokens: number };
      if (tokens !== 16) throw new Error(`${dir}: ${tokens} tokens per generation, expected 16`);
      figures.get(dir)?.push(msPerRequest);
      process.stderr.write(`round ${r + 1} ${dir}: ${fmt(msPerRequest, 3)} ms CPU per generation\n`);
    }
  }
} finally {
  await mock.close();
}
const what = values.worker ? 'inference worker (openai engine)' : 'openai engine';
const lines = [
  `${what} CPU ms per streamed generation (16 tokens; median of ${values.rounds} runs of ${values.count}, ${values.worker && values.rate !== undefined ? `${values.rate} per second` : `${values.concurrency} at a time`}); load average at start ${load.toFixed(2)}`,
  '',
  values.worker ? '| checkout | runs (ms) | median ms/generation | idle ms CPU/s (median) |' : '| checkout | runs (ms) | median ms/generation |',
  values.worker ? '|---|---|---:|---:|' : '|---|---|---:|',
];
for (const [dir, v] of figures) {
  const row = `| ${dir === root ? 'this checkout' : dir} | ${v.map((x) => fmt(x, 3)).join(', ')} | ${fmt(median(v), 3)} |`;
  lines.push(values.worker ? `${row} ${fmt(median(idle.get(dir) ?? []), 2)} |` : row);
}
if (roots.length === 2) {
  const [a = Number.NaN, b = Number.NaN] = roots.map((d) => median(figures.get(d) ?? []));
  lines.push('', `this checkout / compared: ${fmt(a / b, 2)}×`);
}
process.stdout.write(`${lines.join('\n')}\n`);
