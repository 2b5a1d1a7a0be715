/**
 * `npm start`: runs the four processes under a supervisor with one log stream, restarts a
 * crashed one with backoff (scripts/supervisor/), prints how to use the platform once it answers
 * (scripts/start-banner.ts), and on Ctrl-C / SIGTERM drains it in order: the gateway first (its
 * streams finish), then the inference worker, then quota and auth.
 * Embedded defaults only: SQLite for auth, in-memory quota, a local model for inference (with the
 * generated tiny test model as an explicit fallback), Prometheus metrics on 9464–9467.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InferenceServiceDefinition } from '../gen/xerotier/inference/v1/inference_service.js';
import { callOptions, createAppClient, createGrpcChannel } from '../lib/grpc/client.js';
import { createLogger } from '../lib/logging/logger.js';
import { alignDemoEndpoint } from './demo-endpoint.js';
import { formatBanner, type BannerInfo } from './start-banner.js';
import { DEFAULT_BACKOFF } from '../lib/process/backoff.js';
import { startSupervisor, type ChildSpec } from './supervisor/supervisor.js';

// `npm start` runs this file compiled (dist/scripts/start.js, built by scripts/build.mjs) and
// starts the processes from dist/ too; run through tsx (`node --import tsx scripts/start.ts`) it
// starts them through tsx as well.
const compiled = import.meta.filename.endsWith('.js');
const root = path.join(import.meta.dirname, '..', ...(compiled ? ['..'] : []));
const env = process.env;
const setting = (name: string, fallback: string): string => env[name] || fallback;

const ports = {
  gateway: setting('GATEWAY_PORT', '8080'),
  auth: setting('AUTH_PORT', '50051'),
  quota: setting('QUOTA_PORT', '50052'),
  inference: setting('INFERENCE_PORT', '50061'),
  ledger: setting('LEDGER_PORT', '50053'),
  gatewayGrpc: setting('GATEWAY_GRPC_PORT', '8081'),
};
const metricsPorts = {
  gateway: setting('GATEWAY_METRICS_PORT', '9464'),
  auth: setting('AUTH_METRICS_PORT', '9465'),
  quota: setting('QUOTA_METRICS_PORT', '9466'),
  inference: setting('INFERENCE_METRICS_PORT', '9467'),
  ledger: setting('LEDGER_METRICS_PORT', '9468'),
};
const demoKeyFile = path.resolve(root, setting('AUTH_DEMO_KEY_FILE', '.data/demo-api-key'));

const children: ChildSpec[] = [
  {
    name: 'gateway',
    entry: 'gateway/src/main.ts',
    stopStage: 0,
    env: {
      GATEWAY_PORT: ports.gateway,
      GATEWAY_GRPC_PORT: ports.gatewayGrpc,
      GATEWAY_METRICS_PORT: metricsPorts.gateway,
      LEDGER_ADDRESS: `127.0.0.1:${ports.ledger}`,
      AUTH_ADDRESS: `127.0.0.1:${ports.auth}`,
      QUOTA_ADDRESS: `127.0.0.1:${ports.quota}`,
      INFERENCE_WORKERS: setting('INFERENCE_WORKERS', `cpu=127.0.0.1:${ports.inference}`),
    },
  },
  {
    name: 'inference-cpu',
    entry: 'services/inference/src/main.ts',
    stopStage: 1,
    env: {
      INFERENCE_PORT: ports.inference,
      INFERENCE_METRICS_PORT: metricsPorts.inference,
      INFERENCE_HARDWARE_CLASS: 'cpu',
      // The fleet registry lives in the auth process; the worker joins it like any later worker.
      INFERENCE_REGISTRY_ADDRESS: `127.0.0.1:${ports.auth}`,
      INFERENCE_ENGINE: setting('INFERENCE_ENGINE', 'llama-cpp'),
      // Off for a bare worker; a development run still answers without network.
      LLAMA_FALLBACK_TINY: setting('LLAMA_FALLBACK_TINY', 'true'),
    },
  },
  { name: 'quota', entry: 'services/quota/src/main.ts', stopStage: 2, env: { QUOTA_PORT: ports.quota, QUOTA_METRICS_PORT: metricsPorts.quota } },
  // Stops after the gateway, which flushes its buffered usage records on the way out.
  { name: 'ledger', entry: 'services/ledger/src/main.ts', stopStage: 2, env: { LEDGER_PORT: ports.ledger, LEDGER_METRICS_PORT: metricsPorts.ledger } },
  {
    name: 'auth',
    entry: 'services/auth/src/main.ts',
    stopStage: 2,
    env: { AUTH_PORT: ports.auth, AUTH_METRICS_PORT: metricsPorts.auth, AUTH_DEMO_KEY_FILE: demoKeyFile },
  },
];

const logger = createLogger('supervisor', setting('LOG_LEVEL', 'info'));
const supervisor = startSupervisor({
  root,
  compiled,
  baseEnv: env,
  children,
  logger,
  backoff: DEFAULT_BACKOFF,
  // Longer than the gateway's and the worker's default drain grace (25 s).
  stopTimeoutMs: 30_000,
});

// One Ctrl-C is one orderly drain. `npm start` may pass the terminal's signal on a second time;
// repeated signals change nothing (a child that does not stop in time is killed anyway).
const shutdown = (signal: NodeJS.Signals): void => {
  if (supervisor.isStopping()) return;
  logger.info({ signal }, 'stopping the platform');
  void supervisor.stop().then((clean) => process.exit(clean ? 0 : 1));
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);

interface Readiness {
  workers: { ready: number; total: number };
}

/** Waits until the gateway is ready, the demo key exists and every worker has its model loaded. */
async function waitUntilReady(): Promise<boolean> {
  for (let i = 0; i < 1200 && !supervisor.isStopping(); i++) {
    const readiness = await fetch(`http://127.0.0.1:${ports.gateway}/readyz`).then(
      (r) => (r.ok ? (r.json() as Promise<Readiness>) : undefined),
      () => undefined,
    );
    if (readiness !== undefined && existsSync(demoKeyFile) && readiness.workers.ready === readiness.workers.total && (await demoKeyWorks())) {
      return true;
    }
    if (i === 10) process.stdout.write('\n  Waiting for the inference worker to load its model (the first start may download it)...\n\n');
    await sleep(500);
  }
  return false;
}

/** The demo key is accepted end to end (gateway → auth → quota): auth and quota are serving. */
async function demoKeyWorks(): Promise<boolean> {
  const key = readFileSync(demoKeyFile, 'utf8').trim();
  return fetch(`http://127.0.0.1:${ports.gateway}/demo/chat/v1/models`, { headers: { authorization: `Bearer ${key}` } }).then(
    (r) => r.ok,
    () => false,
  );
}

/** What our inference worker serves, asked over its own gRPC API. */
async function servedModel(): Promise<BannerInfo['model']> {
  const address = `127.0.0.1:${ports.inference}`;
  const channel = createGrpcChannel(address);
  try {
    const client = createAppClient(InferenceServiceDefinition, channel, {
      address,
      target: 'inference worker',
      serviceToken: env['SERVICE_TOKEN'],
    });
    const { status } = await client.getStatus({}, { ...callOptions('start-banner'), deadline: 2000 });
    return status ? { name: status.models[0]?.id ?? status.model, engine: status.engine } : undefined;
  } catch {
    return undefined;
  } finally {
    channel.close();
  }
}

if (await waitUntilReady()) {
  await alignDemoEndpoint({
    authAddress: `127.0.0.1:${ports.auth}`,
    inferenceAddress: `127.0.0.1:${ports.inference}`,
    serviceToken: env['SERVICE_TOKEN'],
    modelsUrl: `http://127.0.0.1:${ports.gateway}/demo/chat/v1/models`,
    demoKey: readFileSync(demoKeyFile, 'utf8').trim(),
    project: 'demo',
    endpoint: 'chat',
    logger,
  });
  const model = await servedModel();
  if (!supervisor.isStopping()) {
    process.stdout.write(
      formatBanner({
        root,
        gatewayPort: ports.gateway,
        gatewayGrpcPort: ports.gatewayGrpc,
        baseDomain: setting('GATEWAY_BASE_DOMAIN', 'api.localhost'),
        demoKeyFile,
        metrics: [
          { name: 'gateway', port: metricsPorts.gateway },
          { name: 'auth', port: metricsPorts.auth },
          { name: 'quota', port: metricsPorts.quota },
          { name: 'inference-cpu', port: metricsPorts.inference },
          { name: 'ledger', port: metricsPorts.ledger },
        ],
        model,
      }),
    );
  }
}
