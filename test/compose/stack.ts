/**
 * Drives one Docker Compose project of docker-compose.yml for test/compose/compose.suite.ts:
 * a fresh env file with random secrets and free host ports, the test override
 * (test/compose/test-override.yml), and the docker / compose commands the suite needs. Works
 * with Compose v2 (`docker compose`) and v1 (`docker-compose`), whichever is installed.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = path.join(import.meta.dirname, '..', '..');

export interface Ports {
  gateway: number;
  auth: number;
  quota: number;
}

/** A free TCP port on 127.0.0.1 (the kernel picks it; we release it for Docker to bind). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** `docker compose` when the v2 plugin answers, else the v1 `docker-compose` binary. */
function composeCommand(): string[] {
  const v2 = spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' });
  return v2.status === 0 ? ['docker', 'compose'] : ['docker-compose'];
}

export interface Stack {
  readonly project: string;
  readonly ports: Ports;
  readonly gatewayUrl: string;
  /** Runs a compose subcommand; resolves with stdout, rejects with stderr's tail. */
  compose(args: string[], timeoutMs?: number): Promise<string>;
  containerId(service: string): Promise<string>;
  health(service: string): Promise<string>;
  /** Polls until every service reports `healthy`; resolves with the seconds it took. */
  waitHealthy(services: string[], timeoutMs: number): Promise<number>;
  /** SIGKILLs the service's main process (a crash: the restart policy applies, unlike `docker kill`). */
  crash(service: string): Promise<void>;
  /** The same, split: looks the container up now and returns the kill, for when timing matters. */
  prepareCrash(service: string): Promise<() => Promise<void>>;
  exec(service: string, command: string[]): Promise<string>;
  /** `docker inspect` of a container or image, optionally with a Go template. */
  inspect(id: string, format?: string): Promise<string>;
  /** `down -v` and removal of the env file; never throws. */
  destroy(): Promise<void>;
}

export async function createStack(project: string): Promise<Stack> {
  const ports: Ports = { gateway: await freePort(), auth: await freePort(), quota: await freePort() };
  const dir = mkdtempSync(path.join(tmpdir(), 'xerotier-compose-'));
  const envFile = path.join(dir, 'env');
  // .env.example with random secrets and our ports (every other value stays the documented one).
  const secret = () => randomBytes(24).toString('hex');
  const overrides: Record<string, string> = {
    SERVICE_TOKEN: secret(),
    AUTH_KEY_PEPPER: secret(),
    POSTGRES_PASSWORD: secret(),
    GATEWAY_PUBLISH_PORT: String(ports.gateway),
    AUTH_PUBLISH_PORT: String(ports.auth),
    QUOTA_PUBLISH_PORT: String(ports.quota),
  };
  const lines = readFileSync(path.join(root, '.env.example'), 'utf8')
    .split('\n')
    .map((line) => {
      const key = /^([A-Z0-9_]+)=/.exec(line)?.[1];
      return key && key in overrides ? `${key}=${overrides[key]}` : line;
    });
  writeFileSync(envFile, lines.join('\n'), { mode: 0o600 });

  const base = composeCommand();
  const files = ['-f', 'docker-compose.yml', '-f', 'test/compose/test-override.yml'];
  const compose = async (args: string[], timeoutMs = 120_000): Promise<string> => {
    const [cmd, ...pre] = base;
    try {
      const { stdout } = await run(cmd ?? 'docker', [...pre, '-p', project, '--env-file', envFile, ...files, ...args], {
        cwd: root,
        timeout: timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
      });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`compose ${args.join(' ')} failed: ${(e.stderr ?? e.message).split('\n').slice(-15).join('\n')}`);
    }
  };
  const docker = async (args: string[], timeoutMs = 60_000): Promise<string> =>
    (await run('docker', args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 })).stdout;
  const containerId = async (service: string): Promise<string> => {
    const id = (await compose(['ps', '-q', service])).trim();
    if (!id) throw new Error(`no container for ${service}`);
    return id;
  };
  const health = async (service: string): Promise<string> => {
    const id = await containerId(service);
    return (await docker(['inspect', '--format', '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}', id])).trim();
  };

  const prepareCrash = async (service: string): Promise<() => Promise<void>> => {
    const id = await containerId(service);
    // PID 1 is the init (`init: true`); its child is node. Killing node ends the container with
    // 137, as an out-of-memory kill or a crash would; `docker kill` would count as a manual stop.
    return async () => void (await docker(['exec', id, 'sh', '-c', 'kill -KILL $(cat /proc/1/task/1/children)']));
  };

  return {
    project,
    ports,
    gatewayUrl: `http://127.0.0.1:${ports.gateway}`,
    compose,
    containerId,
    health,
    async waitHealthy(services, timeoutMs) {
      const started = Date.now();
      for (;;) {
        const states = await Promise.all(services.map(async (s) => [s, await health(s).catch(() => 'missing')] as const));
        if (states.every(([, s]) => s === 'healthy')) return (Date.now() - started) / 1000;
        if (Date.now() - started > timeoutMs) {
          throw new Error(`not healthy after ${timeoutMs} ms: ${states.map(([n, s]) => `${n}=${s}`).join(', ')}`);
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    },
    prepareCrash,
    async crash(service) {
      await (await prepareCrash(service))();
    },
    async exec(service, command) {
      return compose(['exec', '-T', service, ...command]);
    },
    inspect: (id, format) => docker(['inspect', ...(format ? ['--format', format] : []), id]),
    async destroy() {
      await compose(['down', '-v', '--remove-orphans', '-t', '5'], 180_000).catch((err: unknown) => {
        process.stderr.write(`compose down failed: ${err instanceof Error ? err.message : String(err)}\n`);
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
