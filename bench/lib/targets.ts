/**
 * The three benchmark targets as real, separate processes on 127.0.0.1:
 *  - mock:    the mock OpenAI server (test/fixtures) in its own process — the upstream itself.
 *  - ours:    gateway → auth, quota (gRPC) → inference worker (openai engine, gRPC stream) → mock.
 *  - portkey: @portkey-ai/gateway's Node server → mock (x-portkey-custom-host).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RequestSpec } from './http-load.js';
import { freePort, stopProcess, waitUntil, WaitAbort, type ChildProcesses, type Proc } from './procs.js';
import { alignDemoEndpoint } from '../../scripts/demo-endpoint.js';
import { createLogger } from '../../lib/logging/logger.js';

/** Compiles dist/ when a source is newer than the last build (scripts/build.mjs; fast when current). */
export function buildDist(root: string): void {
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
}

export type TargetKey = 'mock' | 'ours' | 'portkey';

/** Where targets start: the repository root (cwd and entry files) and the run's child registry. */
export interface BenchHost {
  root: string;
  children: ChildProcesses;
}

export interface Target {
  key: TargetKey;
  label: string;
  /** Full chat-completions URL and the headers it needs. */
  url: string;
  headers: Record<string, string>;
  /** The process the client talks to (its RSS is "gateway memory"). */
  front: Proc;
  /** Every process that serves a request on this path, the upstream mock excluded. */
  procs: Proc[];
  /** Whether the target can serve right now (ours: the gateway sees a connected worker). */
  ready?: () => Promise<boolean>;
  stop(): Promise<void>;
}

export const BODY = {
  model: 'mock',
  messages: [{ role: 'user', content: 'Say hello to the benchmark in a few words.' }],
  max_tokens: 16,
};
export const STREAM_BODY = { ...BODY, stream: true, stream_options: { include_usage: true } };

export function spec(target: Target, stream: boolean): RequestSpec {
  return { url: target.url, headers: target.headers, body: JSON.stringify(stream ? STREAM_BODY : BODY) };
}

/** The parent's environment without any platform variable that could leak into a child. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(GATEWAY_|AUTH_|QUOTA_|INFERENCE_|OPENAI_|LLAMA_|SIM_|TIERS_FILE$|SERVICE_TOKEN$|LOG_LEVEL$|NODE_OPTIONS$|MOCK_)/.test(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

async function httpOk(url: string, init?: RequestInit): Promise<boolean> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(2_000) });
  await res.arrayBuffer();
  return res.ok;
}

/** Sends one non-stream and one stream request; throws unless both succeed with the right shape. */
export async function validate(target: Target): Promise<void> {
  for (const stream of [false, true]) {
    const s = spec(target, stream);
    const res = await fetch(s.url, {
      method: 'POST',
      headers: { ...s.headers, 'content-type': 'application/json' },
      body: s.body,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    const okShape = stream ? text.includes('data: [DONE]') && text.includes('chat.completion.chunk') : text.includes('"chat.completion"');
    if (res.status !== 200 || !okShape) {
      throw new Error(`${target.label}: validation ${stream ? 'stream' : 'non-stream'} request failed: HTTP ${res.status} ${text.slice(0, 300)}`);
    }
  }
}

export interface MockHandle {
  url: string;
  proc: Proc;
  target: Target;
}

export async function startMock(
  host: BenchHost,
  options: { tokens: number; interTokenMs?: number; ttftMs?: number; model?: string },
  label = 'mock direct',
): Promise<MockHandle> {
  const { root } = host;
  let found: { port: number; url: string } | undefined;
  const proc = host.children.start('mock', ['--import', 'tsx', path.join(root, 'bench/lib/mock-process.ts')], {
    cwd: root,
    env: cleanEnv({ MOCK_OPTIONS: JSON.stringify({ model: 'mock', ...options }) }),
    onLine: (line) => {
      if (found || !line.startsWith('{')) return;
      try {
        found = JSON.parse(line) as { port: number; url: string };
      } catch {
        /* not our line */
      }
    },
  });
  try {
    await waitUntil(() => found !== undefined || !proc.alive(), 30_000, 'the mock to listen', 50);
    if (!found) throw new Error(`mock exited: ${proc.output()}`);
  } catch (err) {
    await stopProcess(proc);
    throw err;
  }
  const url = found.url;
  const target: Target = {
    key: 'mock',
    label,
    url: `${url}/chat/completions`,
    headers: { authorization: 'Bearer x' },
    front: proc,
    procs: [],
    stop: () => stopProcess(proc),
  };
  return { url, proc, target };
}

export interface OurPlatform {
  target: Target;
  gateway: Proc;
  auth: Proc;
  quota: Proc;
  inference: Proc;
  /** Times the gateway logged "worker status stream lost" (its gRPC connection to the worker broke). */
  workerLost(): number;
}

/** A tier table like config/tiers.json whose cpu_standard limits never throttle a benchmark. */
export function writeBenchTiers(root: string, dir: string): string {
  const file = path.join(dir, 'tiers.json');
  const table = JSON.parse(readFileSync(path.join(root, 'config/tiers.json'), 'utf8')) as {
    tiers: Record<string, { requestsPerMinute: number | null; tokensPerMinute: number | null }>;
  };
  const tier = table.tiers['cpu_standard'];
  if (!tier) throw new Error('config/tiers.json has no cpu_standard tier');
  // Numeric (not null = unlimited) so the quota service really counts every request.
  tier.requestsPerMinute = 100_000_000;
  tier.tokensPerMinute = 100_000_000_000;
  writeFileSync(file, JSON.stringify(table, null, 2));
  return file;
}

export async function startOurPlatform(options: {
  host: BenchHost;
  /** Working directory for this stack's files (sqlite, demo key). */
  dir: string;
  tiersFile: string;
  /** The inference worker's engine settings (e.g. `INFERENCE_ENGINE`, `OPENAI_UPSTREAM_URL` or `LLAMA_MODEL`). */
  inferenceEnv: Record<string, string>;
  capacity: number;
  queueCapacity?: number;
  /** Startup budget: a llama.cpp worker loads its model first. */
  startTimeoutMs?: number;
  /** Start the gateway, the worker and quota with --cpu-prof into <dir>/<process name>/. */
  cpuProfDir?: string | undefined;
  label?: string;
  /** Extra Node/V8 flags for every process (flags NODE_OPTIONS refuses, e.g. GC settings). */
  nodeArgs?: string[] | undefined;
  /** Extra environment per process (debugging, e.g. GRPC_TRACE). */
  env?: Partial<Record<'gateway' | 'auth' | 'quota' | 'inference', Record<string, string>>>;
  /** GATEWAY_PROCESSES of the gateway (default: unset, one process). */
  gatewayProcesses?: number | undefined;
}): Promise<OurPlatform> {
  const { host, dir } = options;
  const { root } = host;
  const [gatewayPort, authPort, quotaPort, inferencePort, gatewayMetricsPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const keyFile = path.join(dir, 'demo-api-key');
  const common = { LOG_LEVEL: 'warn', TIERS_FILE: options.tiersFile };
  // The processes run the way `npm start` runs them: compiled JavaScript from dist/ (built here
  // when a source changed since the last build), no TypeScript loader.
  buildDist(root);
  const compiled = (entry: string, nodeArgs: string[] = []): string[] => [...(options.nodeArgs ?? []), ...nodeArgs, path.join(root, 'dist', entry.replace(/\.ts$/, '.js'))];
  const profiled = (name: string): string[] =>
    options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${path.join(options.cpuProfDir, name)}`] : [];
  const started: Proc[] = [];
  let workerLost = 0;
  const onGatewayLine = (line: string): void => {
    if (line.includes('worker status stream lost')) workerLost += 1;
  };
  const start = (name: 'gateway' | 'auth' | 'quota' | 'inference', args: string[], env: Record<string, string>): Proc => {
    const p = host.children.start(name, args, {
      cwd: root,
      env: cleanEnv({ ...common, ...env, ...options.env?.[name] }),
      ...(name === 'gateway' ? { onLine: onGatewayLine } : {}),
    });
    started.push(p);
    return p;
  };
  try {
    const auth = start('auth', compiled('services/auth/src/main.ts'), {
      AUTH_HOST: '127.0.0.1',
      AUTH_PORT: String(authPort),
      AUTH_SQLITE_PATH: path.join(dir, 'auth.sqlite'),
      AUTH_DEMO_KEY_FILE: keyFile,
      AUTH_KEY_PEPPER: 'bench-pepper-0123456789abcdef',
    });
    const quota = start('quota', compiled('services/quota/src/main.ts', profiled('quota')), { QUOTA_HOST: '127.0.0.1', QUOTA_PORT: String(quotaPort) });
    const inference = start('inference', compiled('services/inference/src/main.ts', profiled('inference')), {
      INFERENCE_HOST: '127.0.0.1',
      INFERENCE_PORT: String(inferencePort),
      INFERENCE_HARDWARE_CLASS: 'cpu',
      INFERENCE_REGISTRY_ADDRESS: `127.0.0.1:${authPort}`,
      INFERENCE_CAPACITY: String(options.capacity),
      INFERENCE_QUEUE_CAPACITY: String(options.queueCapacity ?? 0),
      INFERENCE_DRAIN_GRACE_MS: '1000',
      ...options.inferenceEnv,
    });
    const gateway = start('gateway', compiled('gateway/src/main.ts', profiled('gateway')), {
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_PORT: String(gatewayPort),
      GATEWAY_METRICS_PORT: String(gatewayMetricsPort),
      GATEWAY_GRPC_PORT: '0',
      LEDGER_ADDRESS: 'off',
      AUTH_ADDRESS: `127.0.0.1:${authPort}`,
      QUOTA_ADDRESS: `127.0.0.1:${quotaPort}`,
      INFERENCE_WORKERS: `cpu=127.0.0.1:${inferencePort}`,
      GATEWAY_DRAIN_GRACE_MS: '1000',
      ...(options.gatewayProcesses === undefined ? {} : { GATEWAY_PROCESSES: String(options.gatewayProcesses) }),
    });
    const dead = (): Proc | undefined => started.find((p) => !p.alive());
    const base = `http://127.0.0.1:${gatewayPort}`;
    /**
     * Connected worker, breaker not open; with `idle`, also nothing in flight on the worker (as last
     * reported). Per-worker detail is on the gateway's operator port, not its public /healthz.
     */
    const workerConnected = async (idle = false): Promise<boolean> => {
      const res = await fetch(`http://127.0.0.1:${gatewayMetricsPort}/workers`, { signal: AbortSignal.timeout(2_000) });
      const body = (await res.json()) as {
        workers?: Array<{ connected?: boolean; model_loaded?: boolean; breaker?: string; in_flight?: number | null }>;
      };
      const workers = body.workers ?? [];
      return (
        res.ok &&
        workers.length > 0 &&
        workers.every(
          (w) => w.connected === true && w.model_loaded === true && w.breaker !== 'open' && (!idle || (w.in_flight ?? 0) === 0),
        )
      );
    };
    await waitUntil(
      async () => {
        const d = dead();
        if (d) throw new WaitAbort(`${d.name} exited during startup:\n${d.output()}`);
        if (!existsSync(keyFile)) return false;
        if (!(await workerConnected(false))) return false;
        // As `npm start` waits: the key is accepted end to end, i.e. auth is serving (it writes the
        // demo key file before it listens, and the gateway's worker does not need it).
        const key = readFileSync(keyFile, 'utf8').trim();
        const models = await fetch(`${base}/demo/chat/v1/models`, { headers: { authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(2_000) });
        await models.arrayBuffer();
        return models.ok;
      },
      options.startTimeoutMs ?? 60_000,
      'the platform (gateway /workers with a connected, loaded worker, demo key file accepted)',
      250,
    ).catch((err: unknown) => {
      const d = dead();
      const outputs = started.map((p) => `--- ${p.name} (${p.alive() ? 'running' : 'exited'}):\n${p.output().slice(-1500)}`).join('\n');
      throw new Error(`${err instanceof Error ? err.message : String(err)}${d ? '' : `\n${outputs}`}`);
    });
    const key = readFileSync(keyFile, 'utf8').trim();
    // As `npm start` does: the demo endpoint names the model the worker advertises (`mock` for the
    // mock upstream, the tiny model's id for it), or the gateway would not route it there.
    const aligned = await alignDemoEndpoint({
      authAddress: `127.0.0.1:${authPort}`,
      inferenceAddress: `127.0.0.1:${inferencePort}`,
      serviceToken: undefined,
      modelsUrl: `${base}/demo/chat/v1/models`,
      demoKey: key,
      project: 'demo',
      endpoint: 'chat',
      logger: createLogger('bench', 'warn'),
    });
    if (aligned === undefined) throw new Error('could not point the demo endpoint at the model the worker serves');
    const target: Target = {
      key: 'ours',
      label: options.label ?? 'ours (gateway→auth+quota→worker)',
      url: `${base}/demo/chat/v1/chat/completions`,
      headers: { authorization: `Bearer ${key}` },
      front: gateway,
      procs: [gateway, auth, quota, inference],
      // Each measurement starts from an idle platform: the gateway's capacity view lags the worker's
      // status report by up to a second, so a burst from the previous measurement could still count.
      ready: () => workerConnected(true).catch(() => false),
      // Gateway first (drains, closes its channels), then the services behind it.
      stop: async () => {
        await stopProcess(gateway, 10_000);
        await Promise.all([auth, quota, inference].map((p) => stopProcess(p, 5_000)));
      },
    };
    return { target, gateway, auth, quota, inference, workerLost: () => workerLost };
  } catch (err) {
    await Promise.all(started.map((p) => stopProcess(p, 3_000)));
    throw err;
  }
}

/** Node preload that makes `server.listen(port)` (no host, as @hono/node-server calls it) bind 127.0.0.1. */
const LOOPBACK_PRELOAD =
  'data:text/javascript,' +
  encodeURIComponent(
    "import net from 'node:net';" +
      'const listen = net.Server.prototype.listen;' +
      'net.Server.prototype.listen = function (...a) {' +
      "  if (typeof a[0] === 'number' && (a[1] === undefined || typeof a[1] === 'function')) a.splice(1, a[1] === undefined ? 1 : 0, '127.0.0.1');" +
      '  return listen.apply(this, a);' +
      '};',
  );

export const PORTKEY_ENTRY = 'node_modules/@portkey-ai/gateway/build/start-server.js';

export function portkeyVersion(root: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(root, 'node_modules/@portkey-ai/gateway/package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export async function startPortkey(host: BenchHost, upstreamUrl: string, label = 'Portkey gateway'): Promise<Target> {
  const { root } = host;
  const port = await freePort();
  const proc = host.children.start('portkey', ['--import', LOOPBACK_PRELOAD, path.join(root, PORTKEY_ENTRY), `--port=${port}`, '--headless'], {
    cwd: root,
    env: cleanEnv({}),
  });
  const target: Target = {
    key: 'portkey',
    label,
    url: `http://127.0.0.1:${port}/v1/chat/completions`,
    headers: { 'x-portkey-provider': 'openai', 'x-portkey-custom-host': upstreamUrl, authorization: 'Bearer x' },
    front: proc,
    procs: [proc],
    stop: () => stopProcess(proc, 5_000),
  };
  try {
    await waitUntil(
      async () => {
        if (!proc.alive()) throw new WaitAbort(`portkey exited during startup:\n${proc.output()}`);
        // Any HTTP answer means it listens (GET / is a plain text banner).
        return httpOk(`http://127.0.0.1:${port}/`).then(() => true);
      },
      30_000,
      'Portkey to listen',
      200,
    );
  } catch (err) {
    await stopProcess(proc);
    throw err;
  }
  return target;
}
