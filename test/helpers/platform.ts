/**
 * Boots the whole platform in-process on port 0: auth (SQLite in memory),
 * quota (memory), the usage ledger (SQLite file in a temp directory), N inference workers and a
 * gateway, each through its own composition function,
 * talking real gRPC over loopback. Logs of every process are captured for assertions.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { startAuthService } from '../../services/auth/src/start.js';
import { loadAuthConfig } from '../../services/auth/src/config.js';
import { startQuotaService } from '../../services/quota/src/start.js';
import { loadQuotaConfig } from '../../services/quota/src/config.js';
import { startInferenceWorker, type InferenceWorker } from '../../services/inference/src/start.js';
import { loadInferenceConfig } from '../../services/inference/src/config.js';
import type { Engine } from '../../services/inference/src/engines/engine.js';
import { createSimulatorEngine, type SimulatorOptions } from '../../services/inference/src/engines/simulator/simulator-engine.js';
import { startLedgerService, type RunningLedgerService } from '../../services/ledger/src/start.js';
import { loadLedgerConfig } from '../../services/ledger/src/config.js';
import { loadGatewayConfig } from '../../gateway/src/config.js';
import { startGateway, type Gateway } from '../../gateway/src/start.js';
import { createLogger } from '../../lib/logging/logger.js';
import { captureLogs, type LogCapture } from './log-capture.js';

export const SIMULATOR_DEFAULTS: SimulatorOptions = {
  tokensPerSecond: 0,
  timeToFirstTokenMs: 0,
  responseTokens: 12,
  contextWindow: 4096,
  failAfterTokens: 0,
  hangAfterTokens: 0,
  crashAfterTokens: 0,
};

export interface PlatformOptions {
  /** Engines for the cpu workers (default: one simulator). */
  engines?: Engine[];
  /** Extra workers at external addresses (e.g. child processes), as pool=host:port. */
  externalWorkers?: string[];
  workerEnv?: Record<string, string>;
  gatewayEnv?: Record<string, string>;
  authEnv?: Record<string, string>;
  quotaEnv?: Record<string, string>;
  ledgerEnv?: Record<string, string>;
  /** Clock for the quota service (epoch ms), to control rate-limit windows. */
  quotaClock?: () => number;
  /**
   * Model id of the demo endpoint. Default, as `npm start` does: the model the first worker
   * advertises (`simulator` for the simulator, the tiny model's id for it), so the demo endpoint
   * is routed to the workers started here.
   */
  demoModel?: string;
}

export interface Platform {
  gateway: Gateway;
  workers: InferenceWorker[];
  authPort: number;
  quotaPort: number;
  /** The usage ledger as started (tests may stop it and start another on `ledgerEnv`). */
  ledger: RunningLedgerService;
  /** Env of the ledger (port and SQLite file): start it again with this after stopping it. */
  ledgerEnv: Record<string, string>;
  /** Metrics ports of auth and quota (set when their *_METRICS_PORT env is given). */
  metricsPorts: { auth: number | undefined; quota: number | undefined };
  demoKey: string;
  logs: LogCapture;
  /**
   * Stops the auth process (and its fleet registry), waits `downMs`, starts it again on the same
   * port. Projects and keys survive only with a file database (authEnv AUTH_SQLITE_PATH).
   */
  restartAuth(downMs?: number): Promise<void>;
  /** Base URL (path form) of an endpoint. */
  baseUrl(project?: string, endpoint?: string): string;
  stop(): Promise<void>;
}

export async function startPlatform(options: PlatformOptions = {}): Promise<Platform> {
  const logs = captureLogs();
  const logger = (name: string): Logger => createLogger(name, 'debug', logs.stream);
  const dir = mkdtempSync(path.join(tmpdir(), 'xero-test-'));
  const demoKeyFile = path.join(dir, 'demo-api-key');
  const stops: Array<() => Promise<void>> = [];
  try {
    const authEnv = { AUTH_PORT: '0', AUTH_SQLITE_PATH: ':memory:', AUTH_DEMO_KEY_FILE: demoKeyFile, AUTH_KEY_PEPPER: 'test-pepper-0123456789abcdef', ...options.authEnv };
    let auth = await startAuthService(loadAuthConfig(authEnv), { logger: logger('auth') });
    // Stops whichever auth instance runs by then (restartAuth replaces it).
    stops.push(() => auth.stop());
    const quota = await startQuotaService(loadQuotaConfig({ QUOTA_PORT: '0', ...options.quotaEnv }), {
      logger: logger('quota'),
      ...(options.quotaClock ? { clock: options.quotaClock } : {}),
    });
    stops.push(() => quota.stop());
    const ledgerPath = path.join(dir, 'ledger.sqlite');
    let ledger = await startLedgerService(loadLedgerConfig({ LEDGER_PORT: '0', LEDGER_SQLITE_PATH: ledgerPath, ...options.ledgerEnv }), {
      logger: logger('ledger'),
    });
    const ledgerEnv = { LEDGER_PORT: String(ledger.port), LEDGER_SQLITE_PATH: ledgerPath, ...options.ledgerEnv };
    // Stops whichever ledger instance `platform.ledger` holds by then (tests may replace it).
    stops.push(() => ledger.stop());
    const engines = options.engines ?? [createSimulatorEngine(SIMULATOR_DEFAULTS)];
    const workers: InferenceWorker[] = [];
    for (const engine of engines) {
      const worker = await startInferenceWorker(
        loadInferenceConfig({
          INFERENCE_PORT: '0',
          INFERENCE_DRAIN_GRACE_MS: '1000',
          // Join the platform's own registry (hosted by its auth service), never a default port.
          INFERENCE_REGISTRY_ADDRESS: `127.0.0.1:${auth.port}`,
          ...options.workerEnv,
        }),
        { logger: logger('inference'), engine },
      );
      stops.push(() => worker.stop());
      await worker.ready;
      workers.push(worker);
    }
    const demoModel = options.demoModel ?? workers[0]?.service.status().models[0]?.id ?? 'simulator';
    // Both demo endpoints (chat and embeddings) name it, as npm start does.
    for (const endpoint of ['chat', 'embeddings']) await auth.service.setEndpointModel({ project: 'demo', endpoint, model: demoModel });
    const workerList = [...workers.map((w) => `cpu=127.0.0.1:${w.port}`), ...(options.externalWorkers ?? [])].join(',');
    const gateway = await startGateway(
      loadGatewayConfig({
        GATEWAY_PORT: '0',
        GATEWAY_GRPC_PORT: '0',
        AUTH_ADDRESS: `127.0.0.1:${auth.port}`,
        QUOTA_ADDRESS: `127.0.0.1:${quota.port}`,
        LEDGER_ADDRESS: `127.0.0.1:${ledger.port}`,
        INFERENCE_WORKERS: workerList,
        GATEWAY_DRAIN_GRACE_MS: '1000',
        ...options.gatewayEnv,
      }),
      { logger: logger('gateway') },
    );
    stops.push(() => gateway.stop());
    await waitFor(() => gateway.fleet.workers.filter((w) => w.connected).length >= workers.length, 5000);
    const platform: Platform = {
      gateway,
      workers,
      get authPort() {
        return auth.port;
      },
      quotaPort: quota.port,
      get ledger() {
        return ledger;
      },
      set ledger(next: RunningLedgerService) {
        ledger = next;
      },
      ledgerEnv,
      async restartAuth(downMs = 0) {
        const port = auth.port;
        await auth.stop();
        await new Promise((r) => setTimeout(r, downMs));
        auth = await startAuthService(loadAuthConfig({ ...authEnv, AUTH_PORT: String(port) }), { logger: logger('auth') });
      },
      metricsPorts: { auth: auth.metricsPort, quota: quota.metricsPort },
      demoKey: readFileSync(demoKeyFile, 'utf8').trim(),
      logs,
      baseUrl: (project = 'demo', endpoint = 'chat') => `http://127.0.0.1:${gateway.port}/${project}/${endpoint}/v1`,
      async stop() {
        for (const stop of stops.reverse()) await stop();
      },
    };
    return platform;
  } catch (err) {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    throw err;
  }
}

export async function waitFor(check: () => boolean, timeoutMs: number, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
