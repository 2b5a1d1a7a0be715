/**
 * Orchestration of bench/llama.ts for one model: start the three paths (raw node-llama-cpp, our
 * engine, the platform), warm each up, then let them take turns: `requests` requests one at a
 * time, then `requests` two at a time, each split into `rounds` rounds with a rotating path
 * order, so drifting load from other work on the host hits every path alike. All paths stay
 * loaded (an idle path costs no CPU). A path × concurrency gets at most --phase-seconds in all.
 */
import { statSync } from 'node:fs';
import { fmt, percentile } from '../lib/stats.js';
import type { LlamaContext } from './context.js';
import { startEngineDirect, startRawDirect } from './direct.js';
import { PARALLEL, WARMUP, chunks, mergePhase, runPhase, type PathHandle, type Phase } from './measure.js';
import { startPlatformPath } from './platform.js';

export type PathKey = 'raw' | 'engine' | 'platform';
export const PATH_KEYS: readonly PathKey[] = ['raw', 'engine', 'platform'];
export const PATH_LABEL: Record<PathKey, string> = {
  raw: 'direct: raw node-llama-cpp',
  engine: 'direct: our engine (in-process)',
  platform: 'through the platform',
};
/** The concurrencies measured, in order. */
export const CONCURRENCIES: readonly number[] = [1, PARALLEL];

export interface ModelRun {
  label: string;
  file: string;
  sizeBytes: number;
  maxTokens: number;
  note: string;
  phases: Map<string, Phase>; // `${path}:${concurrency}`
  describe: Map<PathKey, string>;
  /** The greedy text of each path's first warm-up request (all must be equal). */
  texts: Map<PathKey, string>;
  errors: string[];
  /** How the platform path ran, when it started. */
  platformMode: string | undefined;
}

/** Starts one path and warms it up; a failure is recorded and the other paths go on. */
async function openPath(ctx: LlamaContext, runModel: ModelRun, key: PathKey, start: () => Promise<PathHandle>): Promise<PathHandle | undefined> {
  if (Date.now() > ctx.softDeadline) {
    runModel.errors.push(`${PATH_LABEL[key]}: skipped (time budget)`);
    return undefined;
  }
  try {
    const handle = await start();
    runModel.describe.set(key, handle.describe);
    // Warm-up (discarded), and the greedy text for the cross-path check.
    for (let i = 0; i < WARMUP; i++) {
      const s = await handle.run(-1 - i, 0);
      if (i === 0) runModel.texts.set(key, s.text);
    }
    return handle;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    runModel.errors.push(`${PATH_LABEL[key]}: ${message.slice(0, 1500)}`);
    ctx.log(`${runModel.label} | ${PATH_LABEL[key]} failed to start: ${message.slice(0, 1500)}`);
    return undefined;
  }
}

async function takeTurns(ctx: LlamaContext, runModel: ModelRun, handles: Map<PathKey, PathHandle>): Promise<void> {
  const { requests, rounds, phaseMs } = ctx.flags;
  const keys = [...handles.keys()];
  let index = 0;
  for (const concurrency of CONCURRENCIES) {
    for (const [round, size] of chunks(requests, rounds, concurrency).entries()) {
      const shift = round % Math.max(1, keys.length);
      for (const key of [...keys.slice(shift), ...keys.slice(0, shift)]) {
        const handle = handles.get(key);
        if (!handle) continue;
        const phaseKey = `${key}:${concurrency}`;
        const sofar = runModel.phases.get(phaseKey);
        const left = phaseMs - (sofar?.wallMs ?? 0);
        if (Date.now() > ctx.softDeadline || left <= 0) {
          if (sofar) sofar.stoppedEarly = true;
          continue;
        }
        const phase = await runPhase(handle.run, { requests: size, concurrency, firstIndex: index, budgetMs: left, deadline: ctx.softDeadline });
        runModel.phases.set(phaseKey, mergePhase(sofar, phase));
      }
      index += size;
    }
    for (const key of keys) {
      const phase = runModel.phases.get(`${key}:${concurrency}`);
      if (!phase) {
        runModel.errors.push(`${PATH_LABEL[key]} c=${concurrency}: skipped (time budget)`);
        continue;
      }
      ctx.log(
        `${runModel.label} | ${PATH_LABEL[key]} | c=${concurrency}: ${phase.samples.length} ok, ${phase.failures} failed, ` +
          `TTFT p50 ${fmt(percentile(phase.samples.map((s) => s.ttftMs), 50), 2)} ms, decode p50 ${fmt(percentile(phase.samples.map((s) => s.decodeTps), 50))} tok/s` +
          (phase.firstError ? ` (first error: ${phase.firstError})` : ''),
      );
    }
  }
}

export async function benchModel(
  ctx: LlamaContext,
  model: { label: string; file: string; maxTokens: number; note: string },
  tiersFile: string,
): Promise<ModelRun> {
  const { file, maxTokens } = model;
  const runModel: ModelRun = {
    ...model,
    sizeBytes: statSync(file).size,
    phases: new Map(),
    describe: new Map(),
    texts: new Map(),
    errors: [],
    platformMode: undefined,
  };
  ctx.log(`${model.label}: ${file} (${fmt(runModel.sizeBytes / 1024 / 1024, 2)} MiB), max_tokens ${maxTokens}`);
  const handles = new Map<PathKey, PathHandle>();
  const { threads } = ctx.flags;
  try {
    const starters: Record<PathKey, () => Promise<PathHandle>> = {
      raw: () => startRawDirect(file, maxTokens, threads),
      engine: () => startEngineDirect(file, maxTokens, threads),
      platform: async () => {
        const handle = await startPlatformPath(ctx, file, tiersFile, maxTokens);
        runModel.platformMode = handle.mode;
        return handle;
      },
    };
    for (const key of PATH_KEYS) {
      const handle = await openPath(ctx, runModel, key, starters[key]);
      if (handle) handles.set(key, handle);
    }
    await takeTurns(ctx, runModel, handles);
  } finally {
    for (const [key, handle] of [...handles.entries()].reverse()) {
      await handle.close().catch((err: unknown) => ctx.log(`${PATH_LABEL[key]}: close failed: ${String(err)}`));
    }
  }
  return runModel;
}
