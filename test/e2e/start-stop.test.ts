/**
 * Stopping `npm start`: one Ctrl-C (SIGINT to the supervisor's process group, as a terminal sends
 * it) is one orderly drain — the gateway first, so an open stream finishes, then the worker, then
 * quota, the ledger and auth, each process receiving exactly one signal. And a supervisor killed outright
 * leaves no process behind (XERO_EXIT_WITH_PARENT).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sseRequest } from '../helpers/sse-client.js';
import { startScript, type StartedScript } from './start-harness.js';

async function portsClosed(platform: StartedScript, withinMs: number): Promise<number[]> {
  const ports = [...Object.values(platform.ports), ...Object.values(platform.metricsPorts)];
  const until = Date.now() + withinMs;
  let open: number[] = ports;
  while (open.length > 0 && Date.now() < until) {
    const probes = await Promise.all(
      open.map((port) =>
        fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) }).then(
          () => port,
          (err: unknown) => ((err as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED' ? undefined : port),
        ),
      ),
    );
    open = probes.filter((p): p is number => p !== undefined);
    if (open.length > 0) await new Promise((r) => setTimeout(r, 250));
  }
  return open;
}

interface LogLine {
  service?: string;
  msg?: string;
  children?: string[];
}

const logLines = (out: string): LogLine[] =>
  out.split('\n').flatMap((raw) => {
    if (!raw.startsWith('{')) return [];
    try {
      return [JSON.parse(raw) as LogLine];
    } catch {
      return [];
    }
  });

describe('npm start stop', () => {
  it('one Ctrl-C drains in order: an open stream ends with [DONE], every process gets one signal, exit 0', { timeout: 300_000 }, async () => {
    // The simulator streams 40 tokens at 10/s: about 4 s, well within the 25 s drain grace.
    const platform = await startScript({
      INFERENCE_ENGINE: 'simulator',
      SIM_TOKENS_PER_SECOND: '10',
      SIM_RESPONSE_TOKENS: '40',
      LOG_LEVEL: 'info',
    });
    try {
      let firstToken!: () => void;
      const streaming = new Promise<void>((r) => (firstToken = r));
      const stream = sseRequest({
        port: platform.ports.gateway,
        path: '/demo/chat/v1/chat/completions',
        key: platform.key(),
        body: { model: 'm', stream: true, max_tokens: 40, messages: [{ role: 'user', content: 'Hi' }] },
        onEvent: () => firstToken(),
      });
      await streaming;
      const started = performance.now();
      const code = await platform.interrupt();
      const result = await stream;
      console.log(`# Ctrl-C with an open stream: platform stopped after ${(performance.now() - started).toFixed(0)} ms`);
      assert.equal(result.status, 200);
      const errors = result.events.filter((e) => (e as { error?: unknown }).error !== undefined);
      assert.ok(
        result.ending === 'done' || (result.ending === 'error-event' && errors.length === 1),
        `the stream ends with [DONE] or one error event, never silently (ending: ${result.ending})`,
      );
      assert.equal(result.ending, 'done', 'a stream shorter than the drain grace finishes');
      assert.equal(code, 0, `clean exit:\n${platform.output().slice(-2000)}`);

      const lines = logLines(platform.output());
      const stages = lines.filter((l) => l.service === 'supervisor' && l.msg === 'stopping').map((l) => l.children);
      assert.deepEqual(stages, [['gateway'], ['inference-cpu'], ['quota', 'ledger', 'auth']], 'gateway, then the worker, then quota, ledger and auth');
      for (const service of ['gateway', 'inference-cpu', 'quota', 'ledger', 'auth']) {
        const own = lines.filter((l) => l.service === service);
        assert.equal(own.filter((l) => l.msg === 'shutting down').length, 1, `${service} drains once`);
        assert.equal(own.filter((l) => l.msg === 'second signal, exiting now').length, 0, `${service} gets one signal`);
      }
      assert.deepEqual(await portsClosed(platform, 5000), [], 'every port is free again');
    } finally {
      platform.cleanup();
    }
  });

  it('a supervisor killed outright leaves no process behind', { timeout: 300_000 }, async () => {
    const platform = await startScript({ INFERENCE_ENGINE: 'simulator' });
    try {
      const pids = (['gateway', 'auth', 'quota', 'inference', 'ledger'] as const).map((n) => platform.childPid(n));
      assert.ok(pids.every((p) => p !== undefined), 'five children');
      process.kill(platform.supervisor.pid!, 'SIGKILL');
      const started = performance.now();
      assert.deepEqual(await portsClosed(platform, 30_000), [], 'the children stop on their own');
      console.log(`# supervisor SIGKILLed: every child gone after ${(performance.now() - started).toFixed(0)} ms`);
    } finally {
      platform.cleanup();
    }
  });
});
