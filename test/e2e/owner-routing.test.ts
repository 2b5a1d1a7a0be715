/**
 * The owner filter of model-aware routing, end to end over real gRPC: a worker registered with an
 * owner project is eligible only for that project's requests, a shared worker for everybody.
 * The owned worker's record is registered here by hand (what an enrolled self-hosted worker's
 * registration will carry); both workers run the simulator engine: this is a routing test, no
 * inference claim.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AuthServiceDefinition, Scope } from '../../gen/xerotier/auth/v1/auth_service.js';
import { RegistryServiceDefinition } from '../../gen/xerotier/registry/v1/registry_service.js';
import { callOptions, createAppClient, createGrpcChannel } from '../../lib/grpc/client.js';
import { createLogger } from '../../lib/logging/logger.js';
import { loadInferenceConfig } from '../../services/inference/src/config.js';
import { createSimulatorEngine } from '../../services/inference/src/engines/simulator/simulator-engine.js';
import { startInferenceWorker, type InferenceWorker } from '../../services/inference/src/start.js';
import { SIMULATOR_DEFAULTS, startPlatform, waitFor, type Platform } from '../helpers/platform.js';
import { unthrottledTiers } from '../helpers/tiers.js';

async function workerOf(base: string, key: string): Promise<string | null> {
  const r = await fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
  });
  await r.arrayBuffer();
  assert.equal(r.status, 200);
  return r.headers.get('x-xerotier-worker-id');
}

describe('routing: an owned worker serves its own project only', () => {
  let platform: Platform;
  let owned: InferenceWorker;
  let acmeKey = '';
  let acmeId = '';
  const renew = new AbortController();

  before(async () => {
    const tiers = unthrottledTiers();
    platform = await startPlatform({
      workerEnv: { INFERENCE_WORKER_ID: 'shared-worker' },
      gatewayEnv: { TIERS_FILE: tiers },
      quotaEnv: { TIERS_FILE: tiers },
    });
    const channel = createGrpcChannel(`127.0.0.1:${platform.authPort}`);
    const admin = createAppClient(AuthServiceDefinition, channel, { address: '', target: 'auth' });
    const { project } = await admin.createProject({ slug: 'acme', name: 'Acme' }, callOptions('t'));
    acmeId = project!.id;
    await admin.createEndpoint({ project: 'acme', slug: 'chat', tier: 'cpu_standard', model: 'simulator', hardwarePool: 'cpu', contextWindow: 2048 }, callOptions('t'));
    acmeKey = (await admin.createApiKey({ project: 'acme', name: 'k', scopes: [Scope.SCOPE_INFERENCE], endpointSlug: '' }, callOptions('t'))).secret;
    owned = await startInferenceWorker(
      loadInferenceConfig({ INFERENCE_PORT: '0', INFERENCE_WORKER_ID: 'acme-worker', INFERENCE_REGISTRY_ADDRESS: 'off', INFERENCE_DRAIN_GRACE_MS: '500' }),
      { logger: createLogger('owned', 'silent'), engine: createSimulatorEngine(SIMULATOR_DEFAULTS) },
    );
    await owned.ready;
    const registry = createAppClient(RegistryServiceDefinition, channel, { address: '', target: 'fleet registry' });
    const record = {
      workerId: 'acme-worker',
      address: `127.0.0.1:${owned.port}`,
      pool: 'cpu',
      models: [{ id: 'simulator', contextWindow: 4096, capabilities: ['chat'] }],
      capacity: 4,
      version: 'test',
      ownerProject: acmeId,
    };
    // Keeps the lease alive like a worker's own registration would.
    void (async () => {
      while (!renew.signal.aborted) {
        await registry.register({ worker: record }, callOptions('t')).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 1000));
      }
      channel.close();
    })();
    await waitFor(
      () => platform.gateway.fleet.workers.some((w) => w.owner === acmeId && w.connected && w.models?.includes('simulator') === true),
      10_000,
      'the owned worker to be routable',
    );
  });
  after(async () => {
    renew.abort();
    await owned?.stop();
    await platform?.stop();
  });

  it('0 of 100 requests of another project reach the owned worker', async () => {
    const seen = new Set<string | null>();
    for (let i = 0; i < 10; i++) {
      for (const w of await Promise.all(Array.from({ length: 10 }, () => workerOf(platform.baseUrl(), platform.demoKey)))) seen.add(w);
    }
    assert.deepEqual([...seen], ['shared-worker']);
  });

  it('the owning project’s requests use its worker (and the shared one)', async () => {
    const seen = new Set<string | null>();
    for (let i = 0; i < 10; i++) {
      for (const w of await Promise.all(Array.from({ length: 4 }, () => workerOf(platform.baseUrl('acme', 'chat'), acmeKey)))) seen.add(w);
    }
    assert.ok(seen.has('acme-worker'), [...seen].join(', '));
  });
});
