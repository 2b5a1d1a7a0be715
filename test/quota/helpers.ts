/** Test helpers for the quota suites: Redis connections, private redis-servers, loggers, ports. */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createLogger } from '../../lib/logging/logger.js';
import { QuotaServiceDefinition } from '../../gen/xerotier/quota/v1/quota_service.js';
import { createAppClient, createGrpcChannel, type AppClient } from '../../lib/grpc/client.js';
import { startQuotaService, type QuotaServer } from '../../services/quota/src/start.js';
import type { Clock } from '../../services/quota/src/clock.js';
import { loadQuotaConfig } from '../../services/quota/src/config.js';

/** The shared Redis (never flushed: every test uses its own random prefix). */
export const SHARED_REDIS_URL = process.env['QUOTA_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

export const randomPrefix = (): string => `xqtest:${randomBytes(6).toString('hex')}:`;

/** Deletes every key under `prefix` (keys also expire on their own). */
export async function deletePrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export const silentLogger = (): Logger => createLogger('quota-test', 'silent');

/** A logger whose NDJSON lines are kept in memory for assertions. */
export function capturingLogger(level = 'info'): { logger: Logger; lines: () => Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger('quota-test', level, sink), lines: () => lines };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A private redis-server (no persistence) that a test may SIGKILL and restart on the same port. */
export interface PrivateRedis {
  port: number;
  url: string;
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: the server keeps its sockets open but stops answering (a blackhole). */
  pause(): void;
  resume(): void;
  /** Starts again on the same port; resolves when it answers PING. */
  start(): Promise<void>;
  /** Kills it and removes its directory. */
  dispose(): Promise<void>;
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'xq-redis-'));
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 5_000;
    for (;;) {
      const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => {});
      try {
        await probe.connect();
        if ((await probe.ping()) === 'PONG') return;
      } catch {
        if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
        await new Promise((r) => setTimeout(r, 25));
      } finally {
        probe.disconnect();
      }
    }
  };
  const kill = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    start,
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    async dispose() {
      if (child) child.kill('SIGCONT');
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- gRPC: quota servers and clients -------------------------------------------------------


export type QuotaClient = AppClient<typeof QuotaServiceDefinition>;

/** Starts a quota service on 127.0.0.1:0 with the given extra environment. */
export async function startQuota(
  env: Record<string, string> = {},
  deps: { logger?: Logger; clock?: Clock } = {},
): Promise<QuotaServer> {
  const config = loadQuotaConfig({ QUOTA_PORT: '0', LOG_LEVEL: 'silent', ...env });
  return startQuotaService(config, { logger: deps.logger ?? silentLogger(), ...(deps.clock ? { clock: deps.clock } : {}) });
}

export function quotaClient(port: number, serviceToken?: string): { client: QuotaClient; close(): void } {
  const channel = createGrpcChannel(`127.0.0.1:${port}`);
  const client = createAppClient(QuotaServiceDefinition, channel, {
    address: `127.0.0.1:${port}`,
    target: 'quota service',
    serviceToken,
  });
  return { client, close: () => channel.close() };
}
