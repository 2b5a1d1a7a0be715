/**
 * The `--worker` run of bench/openai-engine-cpu.ts: one inference worker process of a checkout
 * (`services/inference/src/main.ts` of `dir`, openai engine, no fleet registry) in front of the
 * mock upstream, driven from this process over gRPC as a gateway drives it (one `WatchStatus`
 * stream open, `Generate` calls with a request id). CPU is the worker's own, read from /proc:
 * per generation over `count` calls after a warm-up, then per second while idle (from 5 s after the
 * last call).
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InferenceServiceDefinition, Role } from '../../gen/xerotier/inference/v1/inference_service.js';
import { callOptions, createAppClient, createGrpcChannel } from '../../lib/grpc/client.js';
import { ChildProcesses, cpuMs, freePort, stopProcess, waitUntil } from './procs.js';

export interface WorkerFigures {
  msPerRequest: number;
  idleMsPerSecond: number;
  /** Status updates the worker sent during the measured calls, per generation. */
  statusPerRequest: number;
  /** `Generate` messages received per generation during the measured calls (start and final included). */
  messagesPerRequest: number;
}

const WARMUP = 500;

export async function measureWorker(options: {
  children: ChildProcesses;
  dir: string;
  mockUrl: string;
  count: number;
  concurrency: number;
  idleSeconds: number;
  /** Paced instead of closed-loop: start this many calls per second (concurrency then unbounded). */
  rate?: number | undefined;
  /** Run the worker with --cpu-prof, writing its profile into this directory. */
  profileDir?: string | undefined;
}): Promise<WorkerFigures> {
  const { children } = options;
  const port = await freePort();
  let ready = false;
  const prof = options.profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`];
  const proc = children.start('inference', [...prof, '--import', 'tsx', path.join(options.dir, 'services/inference/src/main.ts')], {
    cwd: options.dir,
    env: {
      PATH: process.env['PATH'],
      INFERENCE_ENGINE: 'openai',
      OPENAI_UPSTREAM_URL: options.mockUrl,
      OPENAI_UPSTREAM_MODEL: 'mock',
      INFERENCE_PORT: String(port),
      INFERENCE_REGISTRY_ADDRESS: 'off',
      INFERENCE_CAPACITY: String(Math.max(4, options.concurrency)),
      LOG_LEVEL: 'info',
    },
    onLine: (line) => {
      if (line.includes('"engine ready"')) ready = true;
    },
  });
  const channel = createGrpcChannel(`127.0.0.1:${port}`);
  const watch = new AbortController();
  try {
    await waitUntil(() => ready || !proc.alive(), 30_000, 'the inference worker');
    if (!proc.alive()) throw new Error(`inference worker exited:\n${proc.output()}`);
    const client = createAppClient(InferenceServiceDefinition, channel, { address: `127.0.0.1:${port}`, target: 'bench worker' });
    let updates = 0;
    const statuses = (async () => {
      for await (const update of client.watchStatus({ intervalMs: 1000 }, callOptions('status-watch', watch.signal))) {
        if (update.status) updates += 1;
      }
    })().catch(() => undefined);
    let tokens = 0;
    let messages = 0;
    let sent = 0;
    const one = async (): Promise<void> => {
      sent += 1;
      const request = { requestId: `bench-${sent}`, messages: [{ role: Role.ROLE_USER, content: 'Say hello to the world, please.' }], maxTokens: 16 };
      for await (const m of client.generate(request, callOptions(`bench-${sent}`, undefined, 30_000))) {
        messages += 1;
        if (m.delta) tokens += m.delta.tokenCount;
      }
    };
    const paced = async (n: number, rate: number): Promise<void> => {
      const calls: Promise<void>[] = [];
      const start = performance.now();
      for (let i = 0; i < n; i++) {
        const due = start + (i * 1000) / rate - performance.now();
        if (due > 0) await sleep(due);
        calls.push(one());
      }
      await Promise.all(calls);
    };
    const run = async (n: number): Promise<void> => {
      if (options.rate !== undefined) return paced(n, options.rate);
      await closedLoop(n, options.concurrency);
    };
    const closedLoop = async (n: number, lanes: number): Promise<void> => {
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < n) {
          next += 1;
          await one();
        }
      };
      await Promise.all(Array.from({ length: lanes }, lane));
    };
    // A paced run first warms the worker a few calls at a time: a cold worker (code not compiled
    // yet) hit at the full rate at once can hold more calls than its capacity and queue.
    if (options.rate !== undefined) await closedLoop(WARMUP, 4);
    await run(options.rate === undefined ? WARMUP : Math.min(WARMUP, options.rate * 2));
    tokens = 0;
    messages = 0;
    const before = cpuMs(proc.pid);
    const updatesBefore = updates;
    await run(options.count);
    const after = cpuMs(proc.pid);
    const statusPerRequest = (updates - updatesBefore) / options.count;
    if (tokens !== 16 * options.count) throw new Error(`${options.dir}: ${tokens / options.count} tokens per generation, expected 16`);
    // Past the upstream pool's idle timeout (4 s), so closing those connections is not counted as idle.
    await sleep(5_000);
    const idleBefore = cpuMs(proc.pid);
    await sleep(options.idleSeconds * 1000);
    const idleAfter = cpuMs(proc.pid);
    watch.abort();
    await statuses;
    return {
      msPerRequest: (after - before) / options.count,
      idleMsPerSecond: (idleAfter - idleBefore) / options.idleSeconds,
      statusPerRequest,
      messagesPerRequest: messages / options.count,
    };
  } finally {
    watch.abort();
    channel.close();
    await stopProcess(proc);
  }
}
