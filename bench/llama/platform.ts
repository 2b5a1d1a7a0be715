/**
 * The platform path of bench/llama.ts: HTTP streaming to the gateway → auth → quota → gRPC →
 * inference worker (INFERENCE_ENGINE=llama-cpp, INFERENCE_CAPACITY=PARALLEL) → node-llama-cpp.
 * By default the four processes are spawned like scripts/start.ts does (free ports, 127.0.0.1,
 * LOG_LEVEL=warn; bench/lib/targets.ts startOurPlatform); if that fails, or with --in-process, the
 * platform runs in this process via test/helpers/platform.ts (client and services then share one
 * event loop, and that helper captures debug logs). `mode` says which.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../lib/logging/logger.js';
import { createLlamaCppEngine } from '../../services/inference/src/engines/llama-cpp/llama-cpp-engine.js';
import { startOurPlatform, type OurPlatform } from '../lib/targets.js';
import type { LlamaContext } from './context.js';
import { PARALLEL, type PathHandle } from './measure.js';
import { streamChat } from './stream-chat.js';

export interface PlatformHandle extends PathHandle {
  /** How the platform runs (separate processes or in-process, and whether as a fallback). */
  mode: string;
}

async function startProcesses(ctx: LlamaContext, modelPath: string, tiersFile: string, maxTokens: number): Promise<PlatformHandle> {
  const { threads } = ctx.flags;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'xero-bench-llama-'));
  let platform: OurPlatform | undefined;
  const stop = async (): Promise<void> => {
    await platform?.target.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  ctx.cleanups.add(stop);
  try {
    // The same four processes as the gateway benchmark, with llama.cpp.
    platform = await startOurPlatform({
      host: ctx,
      dir,
      tiersFile,
      capacity: PARALLEL,
      queueCapacity: 8,
      startTimeoutMs: Math.max(1_000, Math.min(120_000, ctx.softDeadline - Date.now())),
      label: 'through the platform',
      inferenceEnv: {
        INFERENCE_ENGINE: 'llama-cpp',
        LLAMA_MODEL: modelPath,
        LLAMA_MODELS_DIR: path.join(dir, 'models'),
        LLAMA_ALLOW_DOWNLOAD: 'false',
        LLAMA_FALLBACK_TINY: 'false',
        LLAMA_GPU: 'cpu',
        LLAMA_THREADS: String(threads),
      },
    });
    const key = String(platform.target.headers['authorization']).replace(/^Bearer /, '');
    const agent = new Agent({ keepAlive: true, maxSockets: PARALLEL });
    const url = new URL(platform.target.url);
    return {
      mode: 'separate processes (gateway, auth, quota, inference; bench/lib/targets.ts startOurPlatform)',
      describe: `4 processes on 127.0.0.1, INFERENCE_CAPACITY=${PARALLEL}, LLAMA_THREADS=${threads}, LOG_LEVEL=warn`,
      run: (index) => streamChat(agent, url, key, index, maxTokens),
      async close() {
        agent.destroy();
        ctx.cleanups.remove(stop);
        await stop();
      },
    };
  } catch (err) {
    ctx.cleanups.remove(stop);
    await stop();
    throw err;
  }
}

async function startInProcess(ctx: LlamaContext, modelPath: string, tiersFile: string, maxTokens: number): Promise<PlatformHandle> {
  const { threads } = ctx.flags;
  const { startPlatform } = await import('../../test/helpers/platform.js');
  const logger = createLogger('bench-llama', 'warn', process.stderr);
  const engine = createLlamaCppEngine({ modelPath, gpu: 'cpu', threads, parallel: PARALLEL }, { logger });
  const platform = await startPlatform({
    engines: [engine],
    workerEnv: { INFERENCE_CAPACITY: String(PARALLEL), INFERENCE_QUEUE_CAPACITY: '8' },
    gatewayEnv: { TIERS_FILE: tiersFile },
    quotaEnv: { TIERS_FILE: tiersFile },
  });
  const stop = (): Promise<void> => platform.stop();
  ctx.cleanups.add(stop);
  const agent = new Agent({ keepAlive: true, maxSockets: PARALLEL });
  const url = new URL(`${platform.baseUrl()}/chat/completions`);
  return {
    mode: 'in-process (test/helpers/platform.ts: one process, one event loop, debug logs captured in memory)',
    describe: `in-process platform, INFERENCE_CAPACITY=${PARALLEL}, threads ${threads}`,
    run: (index) => streamChat(agent, url, platform.demoKey, index, maxTokens),
    async close() {
      agent.destroy();
      ctx.cleanups.remove(stop);
      await stop();
    },
  };
}

/** Separate processes unless --in-process; falls back to in-process when the processes fail to start. */
export async function startPlatformPath(ctx: LlamaContext, modelPath: string, tiersFile: string, maxTokens: number): Promise<PlatformHandle> {
  if (ctx.flags.inProcess) return startInProcess(ctx, modelPath, tiersFile, maxTokens);
  try {
    return await startProcesses(ctx, modelPath, tiersFile, maxTokens);
  } catch (err) {
    if (Date.now() > ctx.softDeadline) throw err;
    ctx.log(`separate processes failed (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); falling back to in-process`);
    const handle = await startInProcess(ctx, modelPath, tiersFile, maxTokens);
    handle.mode += ' — FALLBACK after the separate processes failed';
    return handle;
  }
}
