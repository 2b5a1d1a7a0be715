/**
 * The `--worker --interleave` run of bench/openai-engine-cpu.ts: one inference worker process per
 * checkout, all started at once and kept running (openai engine, mock upstream, one `WatchStatus`
 * stream open each, as in bench/lib/inference-worker-cpu.ts), then driven in turns: each round
 * runs `count` generations on every worker in turn (the order swapped every round) and reads that
 * worker's CPU time from /proc over its turn. The workers share the host's load minute by minute,
 * so a load that changes during the run weighs on both alike, which separate runs one after the
 * other (the plain `--worker` mode) cannot promise on a shared host. The workers run with
 * `--trace-gc`, and the young-generation collections (scavenges) of each turn are counted: a
 * measure of the garbage made per generation that does not depend on the host's load.
 */
import path from 'node:path';
import { InferenceServiceDefinition, Role } from '../../gen/xerotier/inference/v1/inference_service.js';
import { callOptions, createAppClient, createGrpcChannel } from '../../lib/grpc/client.js';
import { runGenerationLanes } from './generation-lanes.js';
import { ChildProcesses, cpuMs, freePort, stopProcess, waitUntil, type Proc } from './procs.js';

export interface InterleavedFigures {
  /** CPU ms per generation of each round, per checkout. */
  msPerRequest: Map<string, number[]>;
  /** `Generate` messages received per generation (start and final included), per checkout. */
  messagesPerRequest: Map<string, number>;
  /** Scavenges per 1,000 generations of each round, per checkout. */
  scavengesPer1000: Map<string, number[]>;
}

const WARMUP = 5000;

interface Worker {
  dir: string;
  proc: Proc;
  /** Scavenges so far (lines of `--trace-gc`). */
  scavenges(): number;
  /** `n` generations, `concurrency` at a time; resolves with the messages and tokens received. */
  run(n: number): Promise<{ messages: number; tokens: number }>;
  close(): void;
}

async function startWorker(children: ChildProcesses, dir: string, mockUrl: string, concurrency: number): Promise<Worker> {
  const port = await freePort();
  let ready = false;
  let scavenges = 0;
  const proc = children.start('inference', ['--trace-gc', '--import', 'tsx', path.join(dir, 'services/inference/src/main.ts')], {
    cwd: dir,
    env: {
      PATH: process.env['PATH'],
      INFERENCE_ENGINE: 'openai',
      OPENAI_UPSTREAM_URL: mockUrl,
      OPENAI_UPSTREAM_MODEL: 'mock',
      INFERENCE_PORT: String(port),
      INFERENCE_REGISTRY_ADDRESS: 'off',
      INFERENCE_CAPACITY: String(Math.max(4, concurrency)),
      LOG_LEVEL: 'info',
    },
    onLine: (line) => {
      if (line.includes('"engine ready"')) ready = true;
      if (line.includes('Scavenge')) scavenges += 1;
    },
  });
  await waitUntil(() => ready || !proc.alive(), 30_000, 'the inference worker');
  if (!proc.alive()) throw new Error(`inference worker exited:\n${proc.output()}`);
  const channel = createGrpcChannel(`127.0.0.1:${port}`);
  const client = createAppClient(InferenceServiceDefinition, channel, { address: `127.0.0.1:${port}`, target: 'bench worker' });
  const watch = new AbortController();
  void (async () => {
    for await (const update of client.watchStatus({ intervalMs: 1000 }, callOptions('status-watch', watch.signal))) void update;
  })().catch(() => undefined);
  let sent = 0;
  return {
    dir,
    proc,
    scavenges: () => scavenges,
    run(n) {
      return runGenerationLanes(n, concurrency, () => {
        sent += 1;
        const request = { requestId: `bench-${sent}`, messages: [{ role: Role.ROLE_USER, content: 'Say hello to the world, please.' }], maxTokens: 16 };
        return client.generate(request, callOptions(`bench-${sent}`, undefined, 30_000));
      });
    },
    close() {
      watch.abort();
      channel.close();
    },
  };
}

export async function measureWorkersInterleaved(options: {
  children: ChildProcesses;
  dirs: string[];
  mockUrl: string;
  count: number;
  concurrency: number;
  rounds: number;
  onRound?: (round: number, dir: string, msPerRequest: number) => void;
}): Promise<InterleavedFigures> {
  const workers: Worker[] = [];
  const msPerRequest = new Map<string, number[]>(options.dirs.map((d) => [d, []]));
  const messagesPerRequest = new Map<string, number>();
  const scavengesPer1000 = new Map<string, number[]>(options.dirs.map((d) => [d, []]));
  try {
    for (const dir of options.dirs) workers.push(await startWorker(options.children, dir, options.mockUrl, options.concurrency));
    for (const w of workers) await w.run(WARMUP);
    for (let r = 0; r < options.rounds; r++) {
      for (const w of r % 2 === 0 ? workers : [...workers].reverse()) {
        const before = cpuMs(w.proc.pid);
        const gcBefore = w.scavenges();
        const { messages, tokens } = await w.run(options.count);
        const ms = (cpuMs(w.proc.pid) - before) / options.count;
        // The worker's output reaches us a moment after its collections: wait for its lines.
        await new Promise((resolve) => setTimeout(resolve, 100));
        scavengesPer1000.get(w.dir)?.push(((w.scavenges() - gcBefore) * 1000) / options.count);
        if (tokens !== 16 * options.count) throw new Error(`${w.dir}: ${tokens / options.count} tokens per generation, expected 16`);
        msPerRequest.get(w.dir)?.push(ms);
        messagesPerRequest.set(w.dir, messages / options.count);
        options.onRound?.(r + 1, w.dir, ms);
      }
    }
    return { msPerRequest, messagesPerRequest, scavengesPer1000 };
  } finally {
    for (const w of workers) {
      w.close();
      await stopProcess(w.proc);
    }
  }
}
