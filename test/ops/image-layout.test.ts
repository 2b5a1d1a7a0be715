/**
 * The image's /app without Docker: copies what docker/Dockerfile's deps and build stages COPY into
 * a temporary directory, runs the build stage's RUN command there (npm run build, the probe's
 * tsc, the asset copies), then starts each target's CMD from that dist/ and asks the compiled
 * health probe, exactly as the compose healthchecks do. Catches a CMD pointing at a file tsc does
 * not emit, a missing descriptor set or tier table next to the compiled code, a probe that does
 * not build outside tsconfig's "include", and a process that does not stop on SIGTERM.
 *
 * node_modules is the repo's (linked), not the image's production install.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseDockerfile, stageCmd } from './compose-support.js';

const root = path.join(import.meta.dirname, '..', '..');
const dockerfile = parseDockerfile(readFileSync(path.join(root, 'docker/Dockerfile'), 'utf8'));
const stage = (name: string) => {
  const found = dockerfile.stages.find((s) => s.name === name);
  assert.ok(found, `stage ${name}`);
  return found;
};

function sh(command: string, cwd: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', command], { cwd, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' });
}

describe('image layout (docker/Dockerfile build stage, run without Docker)', () => {
  let app = '';
  const children: ChildProcess[] = [];

  before(async () => {
    app = mkdtempSync(path.join(tmpdir(), 'xero-image-'));
    // What the deps and build stages COPY from the context, to the same place under /app.
    for (const name of ['deps', 'build']) {
      for (const { keyword, args } of stage(name).instructions) {
        if (keyword !== 'COPY' || args.startsWith('--from=')) continue;
        const parts = args.split(' ');
        const dest = parts.at(-1) ?? '';
        for (const source of parts.slice(0, -1)) {
          const target = dest.endsWith('/') || parts.length > 2 ? path.join(app, dest, path.basename(source)) : path.join(app, dest);
          cpSync(path.join(root, source), target, { recursive: true });
        }
      }
    }
    symlinkSync(path.join(root, 'node_modules'), path.join(app, 'node_modules'), 'dir');
    const run = stage('build').instructions.filter((i) => i.keyword === 'RUN');
    assert.equal(run.length, 1, 'one RUN in the build stage');
    const result = await sh(run[0]?.args ?? 'false', app);
    assert.equal(result.code, 0, `build stage RUN failed:\n${result.output}`);
  });

  after(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    if (app) rmSync(app, { recursive: true, force: true });
  });

  it('emits every target CMD, the probe and the files the code reads next to itself', () => {
    for (const target of ['gateway', 'auth', 'quota', 'inference-cpu', 'inference-gpu']) {
      const cmd = stageCmd(stage(target));
      assert.ok(cmd?.[1] && existsSync(path.join(app, cmd[1])), `${target}: ${cmd?.[1]} is emitted`);
    }
    assert.ok(existsSync(path.join(app, 'dist/docker/health-probe.js')));
    assert.ok(existsSync(path.join(app, 'dist/gen/descriptor-set.binpb')));
    assert.ok(existsSync(path.join(app, 'dist/config/tiers.json')));
    const files = listFiles(path.join(app, 'dist'));
    assert.deepEqual(files.filter((f) => f.endsWith('.map')), [], 'no source maps shipped');
    assert.deepEqual(files.filter((f) => /\.test\.js$/.test(f)), [], 'no tests shipped');
  });

  it('starts every process from dist/ and the compiled probe reports it healthy; SIGTERM stops it', async () => {
    // Each process's port is picked just before it starts (the ones before it are known by then).
    // A port picked free can still be taken before the process binds it (the processes started
    // earlier open sockets of their own): such a start is retried on a new port.
    const ports = { auth: 0, quota: 0, inference: 0, gateway: 0 };
    const common = { PATH: process.env['PATH'] ?? '', NODE_ENV: 'production', SERVICE_TOKEN: 'layout-test-token', LOG_LEVEL: 'warn' };
    const processes: Array<{ target: string; port: keyof typeof ports; spec: () => { env: Record<string, string>; probe: string[] } }> = [
      {
        target: 'auth',
        port: 'auth',
        spec: () => ({
          env: { AUTH_HOST: '127.0.0.1', AUTH_PORT: String(ports.auth), AUTH_SQLITE_PATH: '.data/auth.sqlite', AUTH_KEY_PEPPER: 'layout-test-pepper-0123456789' },
          probe: [`127.0.0.1:${ports.auth}`, 'xerotier.auth.v1.AuthService'],
        }),
      },
      {
        target: 'quota',
        port: 'quota',
        spec: () => ({ env: { QUOTA_HOST: '127.0.0.1', QUOTA_PORT: String(ports.quota) }, probe: [`127.0.0.1:${ports.quota}`, 'xerotier.quota.v1.QuotaService'] }),
      },
      {
        target: 'inference-cpu',
        port: 'inference',
        spec: () => ({
          env: { INFERENCE_HOST: '127.0.0.1', INFERENCE_PORT: String(ports.inference), INFERENCE_ENGINE: 'simulator', INFERENCE_REGISTRY_ADDRESS: `127.0.0.1:${ports.auth}` },
          probe: [`127.0.0.1:${ports.inference}`, 'xerotier.inference.v1.InferenceService'],
        }),
      },
      {
        target: 'gateway',
        port: 'gateway',
        spec: () => ({
          env: {
            GATEWAY_HOST: '127.0.0.1',
            GATEWAY_PORT: String(ports.gateway),
            GATEWAY_GRPC_PORT: '0',
            LEDGER_ADDRESS: 'off',
            AUTH_ADDRESS: `127.0.0.1:${ports.auth}`,
            QUOTA_ADDRESS: `127.0.0.1:${ports.quota}`,
            INFERENCE_WORKERS: `cpu=127.0.0.1:${ports.inference}`,
          },
          probe: [`http://127.0.0.1:${ports.gateway}/healthz`],
        }),
      },
    ];

    const started: Array<{ target: string; child: ChildProcess; output: () => string }> = [];
    for (const p of processes) {
      const cmd = stageCmd(stage(p.target));
      assert.ok(cmd);
      for (let start = 1; ; start++) {
        ports[p.port] = await freePort();
        const { env, probe } = p.spec();
        const child = spawn(cmd[0] ?? 'node', cmd.slice(1), { cwd: app, env: { ...common, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
        const closed = new Promise((r) => child.once('close', r));
        children.push(child);
        let output = '';
        child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
        child.stderr?.on('data', (d: Buffer) => (output += d.toString()));

        let last = { code: -1, output: '' };
        for (let attempt = 0; attempt < 100; attempt++) {
          last = await sh(`node dist/docker/health-probe.js ${probe.join(' ')}`, app);
          if (last.code === 0 || child.exitCode !== null) break;
          await new Promise((r) => setTimeout(r, 200));
        }
        if (last.code !== 0 && child.exitCode !== null) {
          await closed; // all its output read
          if (output.includes('EADDRINUSE') && start < 3) continue;
        }
        assert.equal(last.code, 0, `${p.target} healthy (probe: ${last.output.trim()}; process output: ${output})`);
        started.push({ target: p.target, child, output: () => output });
        break;
      }
    }

    for (const { target, child, output } of started.reverse()) {
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000))]);
      assert.equal(code, 0, `${target} stops cleanly on SIGTERM (${output()})`);
    }
  });
});
