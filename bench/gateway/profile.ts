/**
 * The profile phase of `npm run bench -- --profile`: our platform with the gateway, the inference
 * worker and quota under `node --cpu-prof`, saturated (non-stream, then stream) after a warm-up;
 * each main-thread profile is analysed over the measured load only (bench/lib/cpuprofile.ts).
 */
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { saturate } from '../lib/autocannon.js';
import { analyzeCpuProfile, loadCpuProfile, type WatchItem } from '../lib/cpuprofile.js';
import { stopProcess } from '../lib/procs.js';
import { fmt } from '../lib/stats.js';
import { buildDist, spec, startMock, startOurPlatform, validate } from '../lib/targets.js';
import { openaiEngine, type PhaseContext } from './context.js';

/** Costs worth naming in the profile report (each line: inclusive time of these functions). */
export const PROFILE_WATCH: WatchItem[] = [
  {
    label: 'grpc-js error objects for calls ending non-OK (stack captured and source-mapped)',
    names: ['getErrorStackString', 'callErrorFromStatus'],
    area: /^@grpc\/grpc-js$/,
    combine: 'sum',
  },
  { label: 'Error.stack formatting with source maps (all callers)', names: ['prepareStackTraceCallback'] },
  { label: 'gRPC middleware (lib/grpc: client.ts per call on the gateway, server.ts per call on the services)', names: ['middleware'], area: /^lib\/grpc$/ },
  { label: 'AbortSignal.any (per request / per call before this was removed from the hot path)', names: ['any'], area: /^node internals$/ },
  { label: 'upstream fetch on the worker (undici)', names: ['fetch'], area: /^node internals$/ },
  { label: 'AsyncResource.bind in http2 request (per gRPC call, Node 20)', names: ['bind'], area: /^node internals$/ },
  { label: 'HTTP metrics middleware (lib/metrics/http.ts)', names: ['(anonymous)'], area: /^lib\/metrics$/ },
  { label: 'JSON body parsing (express.json)', names: ['jsonParser'] },
  { label: 'quota Settle after the response', names: ['settle'], area: /^gateway\/src$/ },
  { label: 'quota Reserve', names: ['reserve'], area: /^gateway\/src$/ },
];

export async function profilePhase(ctx: PhaseContext): Promise<void> {
  const { root, workDir, tiersFile, flags, results, running, log } = ctx;
  const seconds = flags.profileSeconds;
  const profDir = path.join(root, '.data', 'bench', `profile-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(profDir, { recursive: true });
  log(`profile: gateway, inference and quota with --cpu-prof into ${path.relative(root, profDir)}/<process>`);
  const mock = await startMock(ctx, { tokens: 16 });
  running.started(mock.target);
  const dir = path.join(workDir, 'profile');
  mkdirSync(dir);
  // Build first (startOurPlatform builds dist/ when a source changed, which can take longer than
  // the whole load): the load window below is counted from the spawn, where the profiles start.
  buildDist(root);
  const spawnedAt = Date.now();
  const ours = await startOurPlatform({ host: ctx, dir, tiersFile, inferenceEnv: openaiEngine(mock.url), capacity: 256, cpuProfDir: profDir });
  running.started(ours.target);
  await validate(ours.target);
  await saturate(spec(ours.target, false), flags.connections, 2);
  const loadFrom = Date.now() - spawnedAt;
  const json = await saturate(spec(ours.target, false), flags.connections, seconds);
  const sse = await saturate(spec(ours.target, true), flags.connections, seconds);
  const loadTo = Date.now() - spawnedAt;
  const load = `${flags.connections} connections, ${seconds} s non-stream (${fmt(json.rps, 0)} req/s) then ${seconds} s stream (${fmt(sse.rps, 0)} req/s), after a 2 s warm-up`;
  log(`profile load: ${load}`);
  // SIGTERM → graceful stop → process.exit → V8 writes the profile.
  await stopProcess(ours.gateway, 20_000);
  await Promise.all([ours.inference, ours.quota].map((p) => stopProcess(p, 20_000)));
  await running.stop(ours.target);
  await running.stop(mock.target);
  const processes: NonNullable<PhaseContext['results']['profile']>['processes'] = [];
  for (const name of ['gateway', 'inference', 'quota']) {
    const file = mainThreadProfile(path.join(profDir, name));
    if (!file) throw new Error(`${name} wrote no .cpuprofile into ${path.relative(root, profDir)}/${name}`);
    // Only the measured load (startup and warm-up left out; the profiler starts a few ms after spawn).
    processes.push({ name, file, summary: analyzeCpuProfile(loadCpuProfile(file), root, { fromMs: loadFrom, toMs: loadTo }) });
    log(`profile written: ${path.relative(root, file)}`);
  }
  results.profile = { load, window: [loadFrom, loadTo], processes };
}

/**
 * One file per thread: CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile. Thread 0 is the main
 * thread (others would be loader or worker threads); fall back to the largest file.
 */
function mainThreadProfile(dir: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort(
      (a, b) =>
        Number(a.split('.')[4] !== '0') - Number(b.split('.')[4] !== '0') ||
        statSync(path.join(dir, b)).size - statSync(path.join(dir, a)).size,
    );
  return files[0] ? path.join(dir, files[0]) : undefined;
}
