/**
 * Gateway resilience against real processes and the simulator engine: cancellation reaches the
 * worker, a killed worker yields one terminal error event, overload is a fast 503 without
 * tripping the breaker, hung workers meet deadlines, and no stream ever ends silently. Figures
 * are printed; bounds are generous.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSimulatorEngine } from '../../services/inference/src/engines/simulator/simulator-engine.js';
import { startChildWorker } from '../helpers/child-worker.js';
import { SIMULATOR_DEFAULTS, startPlatform, waitFor } from '../helpers/platform.js';
import { sseRequest } from '../helpers/sse-client.js';
import { unthrottledTiers } from '../helpers/tiers.js';

const chat = (extra: object = {}) => ({ model: 'm', messages: [{ role: 'user', content: 'hello' }], ...extra });
const PATH = '/demo/chat/v1/chat/completions';

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

/** A tier table whose cpu_standard tier has short timeouts and no practical limits. */
const fastTiers = (requestTimeoutSeconds: number, idleStreamTimeoutSeconds: number): string =>
  unthrottledTiers({ requestTimeoutSeconds, idleStreamTimeoutSeconds });

describe('resilience', () => {
  it('client disconnect mid-stream cancels the generation on the worker promptly (p99 over 100 streams, target 100 ms)', async () => {
    const aborted = new Map<string, number>();
    const cancelled = new Map<string, number>();
    const engine = createSimulatorEngine({
      ...SIMULATOR_DEFAULTS,
      tokensPerSecond: 100,
      responseTokens: 1000,
      onCancel: (id) => cancelled.set(id, performance.now()),
    });
    const tiers = fastTiers(60, 60);
    const platform = await startPlatform({
      engines: [engine],
      workerEnv: { INFERENCE_CAPACITY: '128', INFERENCE_QUEUE_CAPACITY: '0' },
      gatewayEnv: { TIERS_FILE: tiers },
      quotaEnv: { TIERS_FILE: tiers },
    });
    try {
      const streams = Array.from({ length: 100 }, (_, i) => {
        const abortAt = 1 + (i % 20);
        let seen = 0;
        return sseRequest({
          port: platform.gateway.port,
          path: PATH,
          key: platform.demoKey,
          body: chat({ stream: true }),
          onEvent: () => {
            seen += 1;
            return seen >= abortAt;
          },
        }).then((r) => {
          const id = String(r.headers['x-request-id']);
          aborted.set(id, performance.now());
          return r;
        });
      });
      const results = await Promise.all(streams);
      await waitFor(() => cancelled.size >= 100, 5000, 'all cancellations');
      const latencies = [...aborted].map(([id, at]) => (cancelled.get(id) ?? Infinity) - at);
      const p50 = percentile(latencies, 50);
      const p99 = percentile(latencies, 99);
      console.log(`# cancel latency client-close → worker cancel: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`);
      assert.ok(results.every((r) => r.status === 200));
      // The 100 ms target is a benchmark figure (printed above); the test bound only has to catch
      // a broken cancel path (seconds) without flaking on a loaded 2-core machine.
      assert.ok(p99 < 500, `p99 ${p99} ms`);
      await waitFor(() => platform.workers[0]!.service.status().inFlightCount === 0, 1000, 'slots released');
    } finally {
      await platform.stop();
    }
  });

  it('a worker killed mid-stream: one terminal error event per stream; new requests go to the survivor', async () => {
    const a = await startChildWorker({ SIM_TOKENS_PER_SECOND: '20', SIM_RESPONSE_TOKENS: '400', INFERENCE_CAPACITY: '64' });
    const b = await startChildWorker({ SIM_TOKENS_PER_SECOND: '20', SIM_RESPONSE_TOKENS: '400', INFERENCE_CAPACITY: '64' });
    const tiers = fastTiers(60, 60);
    const platform = await startPlatform({
      engines: [],
      externalWorkers: [`cpu=127.0.0.1:${a.port}`, `cpu=127.0.0.1:${b.port}`],
      gatewayEnv: { TIERS_FILE: tiers },
      quotaEnv: { TIERS_FILE: tiers },
    });
    try {
      await waitFor(() => platform.gateway.fleet.workers.every((w) => w.connected), 5000, 'workers connected');
      let killedAt = 0;
      const streams = Array.from({ length: 20 }, () =>
        sseRequest({ port: platform.gateway.port, path: PATH, key: platform.demoKey, body: chat({ stream: true }) }).then((r) => ({
          ...r,
          endedAt: performance.now(),
        })),
      );
      await new Promise((r) => setTimeout(r, 500));
      killedAt = performance.now();
      await a.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 300));
      // Streams on the survivor keep going; end them by stopping b after checking new requests.
      const after = await Promise.all(
        Array.from({ length: 10 }, () =>
          sseRequest({ port: platform.gateway.port, path: PATH, key: platform.demoKey, body: chat({ stream: true, max_tokens: 3 }) }),
        ),
      );
      assert.deepEqual(after.map((r) => r.status), Array(10).fill(200), 'no 5xx after ejection');
      assert.ok(after.every((r) => r.ending === 'done'));
      await b.kill('SIGKILL');
      const results = await Promise.all(streams);
      for (const r of results) {
        assert.equal(r.status, 200);
        assert.equal(r.ending, 'error-event', 'every broken stream ends with exactly one error event');
        assert.equal(r.events.filter((e) => (e as { error?: unknown }).error).length, 1);
      }
      const onA = results.filter((r) => r.headers['x-xerotier-worker-id'] && r.endedAt - killedAt < 2000 && r.endedAt > killedAt);
      console.log(`# worker kill: ${onA.length} streams ended within 2 s of SIGKILL`);
      assert.ok(onA.length > 0, 'streams on the killed worker got their error event within 2 s');
    } finally {
      await a.kill();
      await b.kill();
      await platform.stop();
    }
  });

  it('requests without a first token move to another worker when theirs dies', async () => {
    const slow = await startChildWorker({ SIM_TTFT_MS: '3000', SIM_TOKENS_PER_SECOND: '0', INFERENCE_CAPACITY: '64', INFERENCE_WORKER_ID: 'slow' });
    const fast = await startChildWorker({ SIM_TTFT_MS: '0', SIM_TOKENS_PER_SECOND: '0', INFERENCE_CAPACITY: '64', INFERENCE_WORKER_ID: 'fast' });
    const tiers = fastTiers(60, 60);
    const platform = await startPlatform({
      engines: [],
      externalWorkers: [`cpu=127.0.0.1:${slow.port}`, `cpu=127.0.0.1:${fast.port}`],
      gatewayEnv: { TIERS_FILE: tiers },
      quotaEnv: { TIERS_FILE: tiers },
    });
    try {
      await waitFor(() => platform.gateway.fleet.workers.every((w) => w.connected), 5000, 'workers connected');
      const requests = Array.from({ length: 6 }, () =>
        sseRequest({ port: platform.gateway.port, path: PATH, key: platform.demoKey, body: chat({ stream: true }) }),
      );
      await waitFor(() => (platform.gateway.fleet.workers[0]?.localInFlight ?? 0) > 0, 2000, 'some requests waiting on the slow worker');
      const waiting = platform.gateway.fleet.workers[0]!.localInFlight;
      await slow.kill('SIGKILL');
      const results = await Promise.all(requests);
      console.log(`# ${waiting} requests waiting for a first token on a killed worker: all moved, statuses ${results.map((r) => r.status).join(',')}`);
      for (const r of results) {
        assert.equal(r.status, 200);
        assert.equal(r.ending, 'done');
        assert.equal(r.headers['x-xerotier-worker-id'], 'fast');
      }
    } finally {
      await slow.kill();
      await fast.kill();
      await platform.stop();
    }
  });

  it('overload: capacity 16, 64 concurrent → ≤ 16 in flight, the rest 503 + Retry-After fast, breaker closed', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const engine = createSimulatorEngine({ ...SIMULATOR_DEFAULTS, tokensPerSecond: 50, responseTokens: 10 });
    const counting = {
      ...engine,
      async *generate(p: Parameters<typeof engine.generate>[0], s: AbortSignal) {
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          yield* engine.generate(p, s);
        } finally {
          inFlight -= 1;
        }
      },
    };
    const tiers = fastTiers(60, 60);
    const platform = await startPlatform({
      engines: [counting],
      workerEnv: { INFERENCE_CAPACITY: '16', INFERENCE_QUEUE_CAPACITY: '0' },
      gatewayEnv: { TIERS_FILE: tiers },
      quotaEnv: { TIERS_FILE: tiers },
    });
    try {
      const until = performance.now() + 5000;
      const rejections: number[] = [];
      let ok = 0;
      const statuses = new Map<number, number>();
      const client = async (): Promise<void> => {
        while (performance.now() < until) {
          const started = performance.now();
          const r = await sseRequest({ port: platform.gateway.port, path: PATH, key: platform.demoKey, body: chat({ stream: true }) });
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          if (r.status === 200) {
            ok += 1;
            assert.equal(r.ending, 'done');
          } else {
            assert.equal(r.status, 503, r.body);
            const body = JSON.parse(r.body) as { error: { code: string; type: string } };
            assert.equal(body.error.code, 'capacity_exceeded');
            const retryAfter = Number(r.headers['retry-after']);
            assert.ok(retryAfter >= 1 && retryAfter <= 60);
            rejections.push(performance.now() - started);
            await new Promise((res) => setTimeout(res, 20));
          }
        }
      };
      await Promise.all(Array.from({ length: 64 }, client));
      console.log(
        `# overload 64 clients on capacity 16 for 5 s: ${ok} ok, ${rejections.length} × 503, max in flight ${maxInFlight}, ` +
          `503 latency p50 ${percentile(rejections, 50).toFixed(1)} ms p99 ${percentile(rejections, 99).toFixed(1)} ms`,
      );
      assert.ok(maxInFlight <= 16, `max in flight ${maxInFlight}`);
      assert.ok(rejections.length > 0 && ok > 0);
      assert.deepEqual([...statuses.keys()].sort(), [200, 503]);
      assert.ok(platform.gateway.breakers.every((b) => b.state() === 'closed'), 'capacity rejections never open a breaker');
    } finally {
      await platform.stop();
    }
  });

  it('a hung worker meets the deadline: 504 before the first token, an error event after it', async () => {
    const tiers = fastTiers(1, 60);
    const hangFirst = createSimulatorEngine({ ...SIMULATOR_DEFAULTS, timeToFirstTokenMs: 60_000 });
    const platform = await startPlatform({ engines: [hangFirst], gatewayEnv: { TIERS_FILE: tiers }, quotaEnv: { TIERS_FILE: tiers } });
    try {
      const started = performance.now();
      const r = await sseRequest({ port: platform.gateway.port, path: PATH, key: platform.demoKey, body: chat({ stream: true }) });
      const ms = performance.now() - started;
      console.log(`# hung before first token: ${r.status} after ${ms.toFixed(0)} ms (deadline 1000 ms)`);
      assert.equal(r.status, 504);
      assert.equal((JSON.parse(r.body) as { error: { type: string } }).error.type, 'timeout_error');
      assert.ok(ms >= 950 && ms < 2500, `${ms} ms`);
      await waitFor(() => platform.workers[0]!.service.status().inFlightCount === 0, 1000, 'worker told to stop');
    } finally {
      await platform.stop();
    }
    const hangLater = createSimulatorEngine({ ...SIMULATOR_DEFAULTS, hangAfterTokens: 3 });
    const idleTiers = fastTiers(60, 1);
    const p2 = await startPlatform({ engines: [hangLater], gatewayEnv: { TIERS_FILE: idleTiers }, quotaEnv: { TIERS_FILE: idleTiers } });
    try {
      const started = performance.now();
      const r = await sseRequest({ port: p2.gateway.port, path: PATH, key: p2.demoKey, body: chat({ stream: true }) });
      const ms = performance.now() - started;
      console.log(`# hung after 3 tokens: error event after ${ms.toFixed(0)} ms (idle timeout 1000 ms)`);
      assert.equal(r.status, 200);
      assert.equal(r.ending, 'error-event');
      assert.equal((r.events.at(-1) as { error: { code: string } }).error.code, 'stream_idle_timeout');
      await waitFor(() => p2.workers[0]!.service.status().inFlightCount === 0, 1000, 'worker told to stop');
    } finally {
      await p2.stop();
    }
  });

  it('an engine failure mid-stream becomes one error event, never a silent end', async () => {
    const failing = createSimulatorEngine({ ...SIMULATOR_DEFAULTS, failAfterTokens: 4 });
    const platform = await startPlatform({ engines: [failing] });
    try {
      const r = await sseRequest({ port: platform.gateway.port, path: PATH, key: platform.demoKey, body: chat({ stream: true }) });
      assert.equal(r.status, 200);
      assert.equal(r.ending, 'error-event');
      // The 4 tokens made before the failure are delivered (ready together, they may share a
      // chunk), then exactly one error event.
      const chunks = r.events.slice(0, -1) as Array<{ choices: Array<{ delta: { content?: string } }> }>;
      const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
      assert.equal(text.trim().split(/\s+/).length, 4, '4 tokens before the error');
      assert.equal(r.events.filter((e) => (e as { error?: unknown }).error).length, 1, 'one error event');
      const nonStream = await sseRequest({ port: platform.gateway.port, path: PATH, key: platform.demoKey, body: chat() });
      assert.equal(nonStream.status, 500);
      assert.equal((JSON.parse(nonStream.body) as { error: { type: string } }).error.type, 'server_error');
      assert.ok(!nonStream.body.includes('simulated'), 'internal messages are not leaked');
    } finally {
      await platform.stop();
    }
  });
});
