/**
 * Model-aware routing with real processes talking real gRPC: two workers running llama.cpp on the
 * tiny generated model, advertised under two platform model ids (worker A under the id derived
 * from the model, worker B under INFERENCE_MODEL_ID=tiny-b: the id is the operator's statement of
 * what a worker serves, which is all routing looks at). An endpoint's requests reach only the
 * workers advertising its model; every response names the endpoint's model id; an unknown model
 * is 404, a known one with no worker 503 + Retry-After; a removed worker's breaker leaves the
 * gateway's list and metrics; two gateways see the same workers with the same models; and the
 * registry (auth) restarting under traffic loses no worker: the only failures are what the README
 * documents for auth being down (a key whose cached authentication ran out: a 503 naming auth).
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { AuthServiceDefinition } from '../../gen/xerotier/auth/v1/auth_service.js';
import { RegistryServiceDefinition } from '../../gen/xerotier/registry/v1/registry_service.js';
import { createChatClient } from '../../client/chat-client.js';
import { loadGatewayConfig } from '../../gateway/src/config.js';
import { startGateway, type Gateway } from '../../gateway/src/start.js';
import { callOptions, createAppClient, createGrpcChannel } from '../../lib/grpc/client.js';
import { createLogger } from '../../lib/logging/logger.js';
import { loadInferenceConfig } from '../../services/inference/src/config.js';
import { createLlamaCppEngine } from '../../services/inference/src/engines/llama-cpp/llama-cpp-engine.js';
import { writeTinyGguf } from '../../services/inference/src/engines/llama-cpp/tiny-gguf.js';
import { startInferenceWorker, type InferenceWorker } from '../../services/inference/src/start.js';
import { startPlatform, waitFor, type Platform } from '../helpers/platform.js';
import { unthrottledTiers } from '../helpers/tiers.js';

const TINY_ID = 'xerotier-tiny-successor';
const B_ID = 'tiny-b';
const LEASE_MS = 1500;
/** The gateway's breaker reset (half-open probe) time here: short, so the registry test waits for it. */
const BREAKER_RESET_MS = 2000;
const silent = pino({ level: 'silent' });

/** The worker ids in the registry's snapshot once it holds `count` of them. */
async function registrySnapshot(address: string, count: number, timeoutMs: number): Promise<string[]> {
  const channel = createGrpcChannel(address);
  const registry = createAppClient(RegistryServiceDefinition, channel, { address, target: 'fleet registry' });
  const until = Date.now() + timeoutMs;
  try {
    let ids: string[] = [];
    while (Date.now() < until) {
      const stop = new AbortController();
      try {
        for await (const event of registry.watchWorkers({}, callOptions('t', stop.signal))) {
          ids = (event.snapshot?.workers ?? []).map((w) => w.workerId).sort();
          stop.abort();
          break;
        }
      } catch {
        // Not listening yet: try again.
      }
      if (ids.length >= count) return ids;
      await new Promise((r) => setTimeout(r, 100));
    }
    return ids;
  } finally {
    channel.close();
  }
}

interface Answer {
  status: number;
  worker: string | null;
  body: string;
  retryAfter: string | null;
}

async function chat(base: string, key: string, extra: Record<string, unknown> = {}): Promise<Answer> {
  const r = await fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'anything', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2, temperature: 0, ...extra }),
  });
  return { status: r.status, worker: r.headers.get('x-xerotier-worker-id'), body: await r.text(), retryAfter: r.headers.get('retry-after') };
}

describe('model-aware routing (two models on two llama.cpp workers)', () => {
  let platform: Platform;
  let workerB: InferenceWorker | undefined;
  let modelPath: string;
  const admin = () => createAppClient(AuthServiceDefinition, createGrpcChannel(`127.0.0.1:${platform.authPort}`), { address: '', target: 'auth' });
  const engine = () => createLlamaCppEngine({ modelPath, gpu: 'cpu', threads: 1, parallel: 4, contextSize: 512 }, { logger: silent });

  before(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'model-routing-'));
    modelPath = path.join(dir, 'tiny.gguf');
    await writeTinyGguf(modelPath);
    const tiers = unthrottledTiers();
    platform = await startPlatform({
      engines: [engine()],
      workerEnv: { INFERENCE_CAPACITY: '4', INFERENCE_QUEUE_CAPACITY: '16', INFERENCE_WORKER_ID: 'worker-a' },
      authEnv: { AUTH_REGISTRY_LEASE_TTL_MS: String(LEASE_MS), AUTH_SQLITE_PATH: path.join(dir, 'auth.sqlite') },
      gatewayEnv: { TIERS_FILE: tiers, GATEWAY_METRICS_PORT: '0', GATEWAY_BREAKER_RESET_MS: String(BREAKER_RESET_MS) },
      quotaEnv: { TIERS_FILE: tiers },
    });
    workerB = await startInferenceWorker(
      loadInferenceConfig({
        INFERENCE_PORT: '0',
        INFERENCE_WORKER_ID: 'worker-b',
        INFERENCE_MODEL_ID: B_ID,
        INFERENCE_CAPACITY: '4',
        INFERENCE_QUEUE_CAPACITY: '16',
        INFERENCE_DRAIN_GRACE_MS: '1000',
        INFERENCE_REGISTRY_ADDRESS: `127.0.0.1:${platform.authPort}`,
      }),
      { logger: createLogger('worker-b', 'silent'), engine: engine() },
    );
    await workerB.ready;
    const auth = admin();
    await auth.createEndpoint({ project: 'demo', slug: 'b', tier: 'cpu_standard', model: B_ID, hardwarePool: 'cpu', contextWindow: 512 }, callOptions('t'));
    await auth.createEndpoint({ project: 'demo', slug: 'ghost', tier: 'cpu_standard', model: 'no-such-model', hardwarePool: 'cpu', contextWindow: 512 }, callOptions('t'));
    await waitFor(() => platform.gateway.fleet.workers.some((w) => w.models?.includes(B_ID) === true && w.connected), 10_000, 'worker B routable');
  });
  after(async () => {
    await workerB?.stop();
    await platform.stop();
  });

  it('the demo endpoint names the model its worker serves (derived from the model file)', () => {
    assert.deepEqual(platform.workers[0]!.service.status().models.map((m) => m.id), [TINY_ID]);
  });

  it('0 of 200 requests of model B’s endpoint reach model A’s worker, and the reverse', async () => {
    const perEndpoint = async (endpoint: string): Promise<Map<string, number>> => {
      const seen = new Map<string, number>();
      for (let wave = 0; wave < 20; wave++) {
        const answers = await Promise.all(Array.from({ length: 10 }, () => chat(platform.baseUrl('demo', endpoint), platform.demoKey)));
        for (const a of answers) {
          assert.equal(a.status, 200, a.body);
          seen.set(a.worker ?? '?', (seen.get(a.worker ?? '?') ?? 0) + 1);
        }
      }
      return seen;
    };
    const b = await perEndpoint('b');
    assert.deepEqual([...b], [['worker-b', 200]], 'model B’s endpoint: all on worker B');
    const a = await perEndpoint('chat');
    assert.deepEqual([...a], [['worker-a', 200]], 'model A’s endpoint: all on worker A');
  });

  it('each registry event is logged once, not once per lease renewal', async () => {
    // Several renewals (a third of the lease each) have happened by now.
    await new Promise((r) => setTimeout(r, LEASE_MS));
    const records = platform.logs.records();
    const count = (msg: string, key: string, value: string) => records.filter((r) => r['msg'] === msg && r[key] === value).length;
    assert.equal(count('worker registered', 'workerId', 'worker-b'), 1, 'the registry logs the join once');
    assert.equal(count('worker added to the fleet', 'worker', `127.0.0.1:${workerB!.port}`), 1, 'the gateway logs the join once');
    const registered = records.find((r) => r['msg'] === 'worker registered' && r['workerId'] === 'worker-b');
    assert.deepEqual(registered?.['models'], [B_ID]);
  });

  it('JSON, SSE chunks and /v1/models name the endpoint’s model id', async () => {
    const json = JSON.parse((await chat(platform.baseUrl('demo', 'b'), platform.demoKey)).body) as { model: string; choices: Array<{ message: { content: string } }> };
    assert.equal(json.model, B_ID);
    assert.equal(json.choices[0]?.message.content, 'AB', 'real tiny-model output');
    const sse = await chat(platform.baseUrl('demo', 'b'), platform.demoKey, { stream: true });
    const chunks = sse.body
      .split('\n')
      .filter((l) => l.startsWith('data: {'))
      .map((l) => JSON.parse(l.slice(6)) as { model: string });
    assert.ok(chunks.length >= 2);
    assert.deepEqual([...new Set(chunks.map((c) => c.model))], [B_ID]);
    const chat2 = createChatClient({ address: `127.0.0.1:${platform.gateway.grpcPort}`, apiKey: platform.demoKey });
    try {
      const events = [];
      for await (const e of chat2.createChatCompletion({ project: 'demo', endpoint: 'b', messages: [{ role: 'user', content: 'Hi' }], maxCompletionTokens: 2 })) events.push(e);
      assert.equal(events[0]?.start?.model, B_ID, 'the gRPC front door’s start names it too');
      assert.equal(events[0]?.start?.workerId, 'worker-b');
      const { models: listed } = await chat2.listModels({ project: 'demo', endpoint: 'b' });
      assert.deepEqual(listed.map((m) => m.id), [B_ID]);
    } finally {
      chat2.close();
    }
    const models = await fetch(`${platform.baseUrl('demo', 'b')}/models`, { headers: { authorization: `Bearer ${platform.demoKey}` } });
    assert.deepEqual(((await models.json()) as { data: Array<{ id: string }> }).data.map((m) => m.id), [B_ID]);
  });

  it('a model the platform does not know is 404 model_not_found', async () => {
    const r = await chat(platform.baseUrl('demo', 'ghost'), platform.demoKey);
    assert.equal(r.status, 404);
    const err = (JSON.parse(r.body) as { error: { code: string; type: string } }).error;
    assert.equal(err.code, 'model_not_found');
    assert.equal(err.type, 'not_found_error');
  });

  it('two gateways on one registry converge on the same workers and models', async () => {
    const second: Gateway = await startGateway(
      loadGatewayConfig({ GATEWAY_PORT: '0', GATEWAY_GRPC_PORT: '0', AUTH_ADDRESS: `127.0.0.1:${platform.authPort}`, INFERENCE_WORKERS: '', LEDGER_ADDRESS: 'off' }),
      { logger: createLogger('gateway-2', 'silent') },
    );
    try {
      const view = (g: Gateway) =>
        g.fleet.workers
          .filter((w) => w.connected)
          .map((w) => `${w.address} ${w.pool} ${[...(w.models ?? [])].join('+')}`)
          .sort();
      await waitFor(() => view(second).length === 2, 10_000, 'the second gateway to see both workers');
      assert.deepEqual(view(second), view(platform.gateway));
    } finally {
      await second.stop();
    }
  });

  it('the registry restarting under traffic: workers stay routable, only uncached keys wait for auth', async () => {
    const answers: Array<{ status: number; code: string | undefined; message: string; at: number }> = [];
    let running = true;
    const traffic = (async () => {
      while (running) {
        const both = await Promise.all([chat(platform.baseUrl(), platform.demoKey), chat(platform.baseUrl('demo', 'b'), platform.demoKey)]);
        for (const a of both) {
          const error = a.status === 200 ? undefined : (JSON.parse(a.body) as { error: { code: string; message: string } }).error;
          answers.push({ status: a.status, code: error?.code, message: error?.message ?? '', at: performance.now() });
        }
      }
    })();
    let down = 0;
    let up = 0;
    let registered: string[] = [];
    let reRegisteredMs = NaN;
    let closed = NaN;
    const authBreaker = platform.gateway.breakers.find((b) => b.name === 'auth');
    assert.ok(authBreaker);
    try {
      await new Promise((r) => setTimeout(r, 300));
      down = performance.now();
      await platform.restartAuth(300);
      up = performance.now();
      // Every worker is back in the new registry with its next renewal (a third of the lease).
      registered = await registrySnapshot(`127.0.0.1:${platform.authPort}`, 2, 5000);
      reRegisteredMs = performance.now() - up;
      await new Promise((r) => setTimeout(r, LEASE_MS));
      // When the key's cached authentication ran out while auth was down, its failures may have
      // opened auth's breaker: it answers circuit_open until its half-open probe after the reset
      // time, which the traffic makes. Keep the traffic until it is closed, and a little longer.
      await waitFor(() => authBreaker.state() === 'closed', BREAKER_RESET_MS + 5000, "auth's breaker to close again");
      closed = performance.now();
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      running = false;
      await traffic;
    }
    assert.deepEqual(registered, ['worker-a', 'worker-b']);
    const failed = answers.filter((a) => a.status !== 200);
    console.log(
      `# registry (auth) restart, ${(up - down).toFixed(0)} ms down: ${answers.length} requests, ${failed.length} failed ` +
        `(${[...new Set(failed.map((f) => f.code))].join(', ') || 'none'}); both workers re-registered ${reRegisteredMs.toFixed(0)} ms after auth was back`,
    );
    // What the README documents: a key whose cached authentication ran out while auth was down
    // gets a 503 naming auth; no request fails for want of a worker, and none after auth is back.
    const authDown = (f: (typeof failed)[number]) =>
      f.status === 503 && (f.code === 'auth_unavailable' || (['upstream_unavailable', 'circuit_open'].includes(f.code ?? '') && /auth/.test(f.message)));
    assert.deepEqual(failed.filter((f) => !authDown(f)), [], 'no failure other than auth being down');
    // The gateway's channel to auth reconnects within about 2 s of auth listening again; after
    // that only auth's breaker, if it opened, still answers (circuit_open) until its reset time
    // has passed, and nothing fails once it closed.
    assert.deepEqual(
      failed.filter((f) => f.at > up + 2500 && !(f.code === 'circuit_open' && /auth/.test(f.message))),
      [],
      'no failure once auth is back but the open breaker’s',
    );
    assert.ok(closed - up < BREAKER_RESET_MS + 2500, `auth's breaker closed ${(closed - up).toFixed(0)} ms after auth was back`);
    assert.deepEqual(failed.filter((f) => f.at > closed), [], 'no failure once the breaker closed');
    assert.ok(answers.filter((a) => a.at > down && a.at < up && a.status === 200).length > 0 || up - down < 50, 'requests were served while the registry was down');
    assert.equal(platform.gateway.fleet.workers.filter((w) => w.connected).length, 2, 'the gateway kept both workers');
  });

  it('a stopped worker’s model becomes 503 model_unavailable; its breaker leaves the list and the metrics', async () => {
    const address = `127.0.0.1:${workerB!.port}`;
    const target = `inference:cpu@${address}`;
    assert.ok(platform.gateway.breakers.some((b) => b.name === target));
    await workerB!.stop();
    workerB = undefined;
    await waitFor(() => !platform.gateway.fleet.workers.some((w) => w.address === address), 5000, 'worker B to leave the fleet');
    const r = await chat(platform.baseUrl('demo', 'b'), platform.demoKey);
    assert.equal(r.status, 503, r.body);
    assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'model_unavailable', r.body);
    assert.ok(Number(r.retryAfter) >= 1, 'with Retry-After');
    assert.equal((await chat(platform.baseUrl(), platform.demoKey)).status, 200, 'model A still served');
    await waitFor(() => !platform.gateway.breakers.some((b) => b.name === target), 5000, 'the breaker to leave the list');
    const metrics = await (await fetch(`http://127.0.0.1:${platform.gateway.metricsPort}/metrics`)).text();
    assert.ok(!metrics.includes(address), 'no metric names the removed worker');
    const view = (await (await fetch(`http://127.0.0.1:${platform.gateway.metricsPort}/workers`)).json()) as {
      workers: Array<{ worker_id: string; models: string[]; owner: string | null; state: string; load: number }>;
    };
    assert.deepEqual(
      view.workers.map((w) => [w.worker_id, w.models, w.owner, w.state]),
      [['worker-a', [TINY_ID], null, 'ready']],
    );
    assert.equal(typeof view.workers[0]?.load, 'number');
  });
});
