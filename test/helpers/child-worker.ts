/** Starts an inference worker as a real child process (for kill/stop fault tests). */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';

const root = path.join(import.meta.dirname, '..', '..');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface ChildWorker {
  port: number;
  child: ChildProcess;
  output: () => string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts a worker on a free port, or on `env.INFERENCE_PORT` (a worker restarted in place). */
export async function startChildWorker(env: Record<string, string> = {}): Promise<ChildWorker> {
  const port = env['INFERENCE_PORT'] ? Number(env['INFERENCE_PORT']) : await freePort();
  let output = '';
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'services/inference/src/main.ts')], {
    cwd: root,
    // No registry unless the test names one: a child worker must never join a platform on default ports.
    env: { ...process.env, INFERENCE_PORT: String(port), INFERENCE_ENGINE: 'simulator', LOG_LEVEL: 'info', INFERENCE_REGISTRY_ADDRESS: 'off', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const until = Date.now() + 20_000;
  while (!output.includes('engine ready')) {
    if (child.exitCode !== null || Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`worker did not start: ${output.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    child,
    output: () => output,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await exited;
    },
  };
}
