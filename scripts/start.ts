/**
 * `npm start`: runs the four processes as child processes with one log stream, prints the base
 * URLs, the demo API key and a ready-to-paste curl line, and stops everything on Ctrl-C.
 * Embedded defaults only: SQLite for auth, in-memory quota, a local model for inference.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const root = path.join(import.meta.dirname, '..');
const env = process.env;
const ports = {
  gateway: env['GATEWAY_PORT'] ?? '8080',
  auth: env['AUTH_PORT'] ?? '50051',
  quota: env['QUOTA_PORT'] ?? '50052',
  inference: env['INFERENCE_PORT'] ?? '50061',
};
const demoKeyFile = env['AUTH_DEMO_KEY_FILE'] ?? path.join(root, '.data', 'demo-api-key');
const baseDomain = env['GATEWAY_BASE_DOMAIN'] ?? 'api.localhost';

const processes: Array<{ name: string; entry: string; env: Record<string, string> }> = [
  { name: 'auth', entry: 'services/auth/src/main.ts', env: { AUTH_PORT: ports.auth, AUTH_DEMO_KEY_FILE: demoKeyFile } },
  { name: 'quota', entry: 'services/quota/src/main.ts', env: { QUOTA_PORT: ports.quota } },
  {
    name: 'inference-cpu',
    entry: 'services/inference/src/main.ts',
    env: { INFERENCE_PORT: ports.inference, INFERENCE_HARDWARE_CLASS: 'cpu', INFERENCE_ENGINE: env['INFERENCE_ENGINE'] ?? 'llama-cpp' },
  },
  {
    name: 'gateway',
    entry: 'gateway/src/main.ts',
    env: {
      GATEWAY_PORT: ports.gateway,
      AUTH_ADDRESS: `127.0.0.1:${ports.auth}`,
      QUOTA_ADDRESS: `127.0.0.1:${ports.quota}`,
      INFERENCE_WORKERS: env['INFERENCE_WORKERS'] ?? `cpu=127.0.0.1:${ports.inference}`,
    },
  },
];

const children: ChildProcess[] = [];
let stopping = false;

function stopAll(code: number): void {
  if (stopping) return;
  stopping = true;
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  const force = setTimeout(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  }, 30_000);
  force.unref();
  void Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null))).then(() =>
    process.exit(code),
  );
}

for (const p of processes) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, p.entry)], {
    cwd: root,
    env: { ...env, ...p.env, XERO_EXIT_WITH_PARENT: '1' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.push(child);
  child.once('exit', (code, signal) => {
    if (!stopping) {
      process.stderr.write(`${p.name} exited (${signal ?? code}); stopping the platform\n`);
      stopAll(1);
    }
  });
}
process.on('SIGINT', () => stopAll(0));
process.on('SIGTERM', () => stopAll(0));

// Wait until the gateway answers, the demo key exists and every worker has its model loaded
// (a first start may download the model), then say how to use it.
interface Health {
  workers: Array<{ connected: boolean; model_loaded: boolean }>;
}
let announcedWait = false;
for (let i = 0; i < 1200 && !stopping; i++) {
  const health = await fetch(`http://127.0.0.1:${ports.gateway}/healthz`).then(
    (r) => (r.ok ? (r.json() as Promise<Health>) : undefined),
    () => undefined,
  );
  const ready = health !== undefined && existsSync(demoKeyFile) && health.workers.every((w) => w.connected && w.model_loaded);
  if (ready) break;
  if (i === 10 && !announcedWait) {
    announcedWait = true;
    process.stdout.write('\n  Waiting for the inference worker to load its model (the first start may download it)...\n\n');
  }
  await sleep(500);
}
if (!stopping) {
  const key = existsSync(demoKeyFile) ? readFileSync(demoKeyFile, 'utf8').trim() : '<see the demo key file>';
  const base = `http://127.0.0.1:${ports.gateway}/demo/chat/v1`;
  process.stdout.write(
    [
      '',
      '  Xerotier platform is up.',
      `  Base URL (path-based): ${base}`,
      `  Base URL (DNS-based):  http://chat.demo.${baseDomain}:${ports.gateway}/v1`,
      `  Demo API key:          ${key}   (stored in ${path.relative(root, demoKeyFile)})`,
      '',
      `  curl ${base}/chat/completions -H "Authorization: Bearer ${key}" -H "Content-Type: application/json" \\`,
      `    -d '{"model":"smollm2-135m-instruct","messages":[{"role":"user","content":"Hello!"}]}'`,
      '',
      '  Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
}
