/**
 * Self-hosted workers, with real processes: a worker process started with a join key enrolls at
 * the gateway's gRPC port and dials out (it listens on no port), then serves its own project's
 * self_hosted endpoint through the tunnel. Another project's requests never reach it (they are
 * served by a shared self-hosted worker instead). Revoking the worker, or its join key, cuts it
 * off within 5 s (printed). A worker credential is neither an API key nor a join key.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AuthServiceDefinition, Scope } from '../../gen/xerotier/auth/v1/auth_service.js';
import { WorkerTunnelServiceDefinition } from '../../gen/xerotier/gateway/v1/worker_tunnel_service.js';
import { isAppError } from '../../lib/errors/app-error.js';
import { callOptions, createAppClient, createGrpcChannel } from '../../lib/grpc/client.js';
import { Metadata } from 'nice-grpc';
import { startChildWorker, type ChildWorker } from '../helpers/child-worker.js';
import { startPlatform, waitFor, type Platform } from '../helpers/platform.js';
import { unthrottledTiers } from '../helpers/tiers.js';
import { createConnection } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';

/** The unthrottled tier table with the self_hosted tier's request timeout shortened (deadline test). */
function tiersWithSelfHostedTimeout(seconds: number): string {
  const file = unthrottledTiers();
  const table = JSON.parse(readFileSync(file, 'utf8')) as { tiers: Record<string, Record<string, unknown>> };
  table.tiers['self_hosted']!['requestTimeoutSeconds'] = seconds;
  writeFileSync(file, JSON.stringify(table));
  return file;
}

const REQUEST_TIMEOUT_S = 3;

interface Tenant {
  projectId: string;
  key: string;
}

async function chat(base: string, key: string): Promise<{ status: number; worker: string | null; code: string | null }> {
  const r = await fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }),
  });
  const body = (await r.json()) as { error?: { code?: string } };
  return { status: r.status, worker: r.headers.get('x-xerotier-worker-id'), code: body.error?.code ?? null };
}

async function api(platform: Platform, method: string, path: string, key: string, body?: unknown) {
  const r = await fetch(`http://127.0.0.1:${platform.gateway.port}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> & { data?: Array<Record<string, unknown>> } };
}

/** Whether anything accepts TCP connections on the port. */
async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('self-hosted workers: join keys, enrollment, dial-out tunnel', () => {
  let platform: Platform;
  let acme: Tenant;
  let other: Tenant;
  let shared: ChildWorker;
  const children: ChildWorker[] = [];

  const selfHosted = async (joinKey: string, name: string, env: Record<string, string> = {}): Promise<{ child: ChildWorker; workerId: string }> => {
    const child = await startChildWorker({
      INFERENCE_JOIN_KEY: joinKey,
      INFERENCE_PLATFORM_ADDRESS: `127.0.0.1:${platform.gateway.grpcPort}`,
      INFERENCE_WORKER_ID: name,
      INFERENCE_HARDWARE_CLASS: 'self-hosted',
      SIM_TOKENS_PER_SECOND: '0',
      SIM_TTFT_MS: '0',
      ...env,
    });
    children.push(child);
    const workerId = /"workerId":"(wrk_[0-9a-f]+)"/.exec(child.output())?.[1];
    assert.ok(workerId, 'the worker logged its enrolled id');
    await waitFor(
      () => platform.gateway.fleet.workers.some((w) => w.address === `tunnel:${workerId}` && w.connected && w.status?.modelLoaded === true),
      10_000,
      'the tunnel worker to be routable',
    );
    return { child, workerId };
  };

  before(async () => {
    const tiers = tiersWithSelfHostedTimeout(REQUEST_TIMEOUT_S);
    // A shared (unowned) self-hosted worker, dialled as usual: other projects' self_hosted capacity.
    shared = await startChildWorker({ INFERENCE_WORKER_ID: 'shared-self-hosted', SIM_TTFT_MS: '0', SIM_TOKENS_PER_SECOND: '0' });
    children.push(shared);
    platform = await startPlatform({
      externalWorkers: [`self-hosted=127.0.0.1:${shared.port}`],
      // A long drain grace: stopping must still be quick, since idle tunnels close at once.
      gatewayEnv: { TIERS_FILE: tiers, GATEWAY_DRAIN_GRACE_MS: '20000' },
      quotaEnv: { TIERS_FILE: tiers },
    });
    const admin = createAppClient(AuthServiceDefinition, createGrpcChannel(`127.0.0.1:${platform.authPort}`), { address: '', target: 'auth' });
    const tenant = async (slug: string): Promise<Tenant> => {
      const project = await admin.createProject({ slug, name: slug }, callOptions('t'));
      await admin.createEndpoint(
        { project: slug, slug: 'own', tier: 'self_hosted', model: 'simulator', hardwarePool: 'self-hosted', contextWindow: 4096 },
        callOptions('t'),
      );
      const key = await admin.createApiKey({ project: slug, name: slug, scopes: [Scope.SCOPE_INFERENCE, Scope.SCOPE_MANAGEMENT], endpointSlug: '' }, callOptions('t'));
      return { projectId: project.project!.id, key: key.secret };
    };
    acme = await tenant('acme');
    other = await tenant('other');
  });

  after(async () => {
    const started = performance.now();
    await platform?.stop();
    const stopMs = performance.now() - started;
    console.log(`# platform stop with a self-hosted tunnel open: ${Math.round(stopMs)} ms (drain grace 20000 ms)`);
    for (const c of children) await c.kill();
    assert.ok(stopMs < 10_000, 'an idle tunnel does not hold the gateway for its drain grace');
  });

  it("serves its project's self_hosted endpoint with no listening port; another project never reaches it", async () => {
    const created = await api(platform, 'POST', '/acme/v1/workers/join-keys', acme.key, { name: 'rack-1', max_uses: 3 });
    assert.equal(created.status, 201);
    const joinKey = String(created.body['key']);
    assert.match(joinKey, /^xjk_/);
    const listed = await api(platform, 'GET', '/acme/v1/workers/join-keys', acme.key);
    assert.equal(listed.body.data?.[0]?.['key'], undefined, 'a listing never shows the secret');
    assert.equal((await api(platform, 'GET', '/acme/v1/workers/join-keys', other.key)).status, 403, "another project's key cannot see them");
    const bad = await api(platform, 'POST', '/acme/v1/workers/join-keys', acme.key, { max_uses: 0, color: 'red' });
    assert.equal(bad.status, 400);
    assert.equal((bad.body['error'] as { type?: string }).type, 'invalid_request_error');
    const unknown = await api(platform, 'DELETE', '/acme/v1/workers/join-keys/jk_unknown', acme.key);
    assert.equal(unknown.status, 404);
    assert.equal((unknown.body['error'] as { code?: string }).code, 'join_key_not_found');

    const { child, workerId } = await selfHosted(joinKey, 'acme-box');
    assert.ok(!child.output().includes('inference worker listening'), 'the worker did not open a gRPC listener');
    assert.equal(await listening(child.port), false, 'nothing listens on the port it was given');

    const states = await api(platform, 'GET', '/acme/v1/workers', acme.key);
    assert.equal(states.status, 200);
    const mine = states.body.data?.find((w) => w['id'] === workerId);
    assert.equal(mine?.['state'], 'online');

    const acmeWorkers = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const r = await chat(platform.baseUrl('acme', 'own'), acme.key);
      assert.equal(r.status, 200);
      acmeWorkers.set(String(r.worker), (acmeWorkers.get(String(r.worker)) ?? 0) + 1);
    }
    assert.ok((acmeWorkers.get(workerId) ?? 0) > 0, `the owned worker served its project (${JSON.stringify([...acmeWorkers])})`);

    let reachedOwned = 0;
    const otherWorkers = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const r = await chat(platform.baseUrl('other', 'own'), other.key);
      assert.equal(r.status, 200, `other project's request ${i} is served by shared capacity (${r.code})`);
      if (r.worker === workerId) reachedOwned++;
      otherWorkers.add(String(r.worker));
    }
    console.log(`# other project's requests reaching acme's worker: ${reachedOwned} of 100 (served by ${[...otherWorkers].join(', ')})`);
    assert.equal(reachedOwned, 0);
  });

  it('a worker credential is not an API key and cannot enroll anywhere; revoking the worker cuts it off within 5 s', async () => {
    const created = await api(platform, 'POST', '/acme/v1/workers/join-keys', acme.key, { max_uses: 2 });
    const joinKey = String(created.body['key']);
    // Enroll directly (as a worker would) to hold a credential in the test.
    const tunnel = createAppClient(WorkerTunnelServiceDefinition, createGrpcChannel(`127.0.0.1:${platform.gateway.grpcPort}`), { address: '', target: 'gateway' });
    const enrolled = await tunnel.enroll({ joinKey, name: 'probe', model: 'x' }, callOptions('t'));
    assert.equal(enrolled.project, 'acme', 'a join key enrolls into its own project');
    const credential = enrolled.credential;
    assert.match(credential, /^xwc_/);

    const asApiKey = await chat(platform.baseUrl('acme', 'own'), credential);
    assert.equal(asApiKey.status, 401);
    assert.equal((await api(platform, 'GET', '/acme/v1/workers', credential)).status, 401);
    await assert.rejects(
      tunnel.enroll({ joinKey: credential, name: 'again', model: 'x' }, callOptions('t')),
      (err: unknown) => isAppError(err) && err.kind === 'unauthenticated' && err.code === 'invalid_join_key',
    );
    await assert.rejects(
      tunnel.enroll({ joinKey: other.key, name: 'again', model: 'x' }, callOptions('t')),
      (err: unknown) => isAppError(err) && err.kind === 'unauthenticated',
      "another project's API key is no join key",
    );
    // An API key does not open a tunnel either.
    const refused = tunnel.connect((async function* () {})(), { metadata: Metadata({ authorization: `Bearer ${acme.key}` }) });
    await assert.rejects(
      (async () => {
        for await (const _ of refused) break;
      })(),
      (err: unknown) => isAppError(err) && err.kind === 'unauthenticated',
    );

    // The remaining use enrolls a real worker process; revoke it and time the cut-off.
    const { child, workerId } = await selfHosted(joinKey, 'acme-revoked');
    assert.equal((await api(platform, 'POST', '/acme/v1/workers/join-keys', acme.key, {})).status, 201);
    const started = performance.now();
    const revoked = await api(platform, 'DELETE', `/acme/v1/workers/${workerId}`, acme.key);
    assert.equal(revoked.status, 200);
    assert.equal(revoked.body['state'], 'revoked');
    await waitFor(() => !platform.gateway.fleet.workers.some((w) => w.address === `tunnel:${workerId}`), 5000, 'the revoked worker to leave the fleet');
    const cutMs = performance.now() - started;
    console.log(`# worker revoked -> out of the fleet: ${Math.round(cutMs)} ms`);
    assert.ok(cutMs < 5000);
    await waitFor(() => child.output().includes('not reconnecting'), 5000, 'the worker to stop reconnecting');
    for (let i = 0; i < 10; i++) {
      const r = await chat(platform.baseUrl('acme', 'own'), acme.key);
      assert.notEqual(r.worker, workerId, 'no request reaches a revoked worker');
    }
    const usedUp = await tunnel.enroll({ joinKey, name: 'third', model: 'x' }, callOptions('t')).catch((err: unknown) => err);
    assert.ok(isAppError(usedUp) && usedUp.code === 'invalid_join_key', 'a join key enrolls at most max_uses workers');
  });

  it('revoking the join key cuts off the workers enrolled with it within 5 s', async () => {
    const created = await api(platform, 'POST', '/acme/v1/workers/join-keys', acme.key, { name: 'to-revoke' });
    const { workerId } = await selfHosted(String(created.body['key']), 'acme-jk');
    const started = performance.now();
    const revoked = await api(platform, 'DELETE', `/acme/v1/workers/join-keys/${String(created.body['id'])}`, acme.key);
    assert.equal(revoked.status, 200);
    assert.equal(revoked.body['revoked'], true);
    await waitFor(() => !platform.gateway.fleet.workers.some((w) => w.address === `tunnel:${workerId}`), 5000, 'the worker to leave the fleet');
    const cutMs = performance.now() - started;
    console.log(`# join key revoked -> its worker out of the fleet: ${Math.round(cutMs)} ms`);
    assert.ok(cutMs < 5000);
    const listed = await api(platform, 'GET', '/acme/v1/workers', acme.key);
    assert.equal(listed.body.data?.find((w) => w['id'] === workerId)?.['state'], 'revoked');
  });

  it('cancellation and the deadline reach the worker through the tunnel', async () => {
    // Only the slow worker below may serve now: the shared one goes away, acme's others are revoked.
    await shared.kill();
    for (const w of (await api(platform, 'GET', '/acme/v1/workers', acme.key)).body.data ?? []) {
      if (w['state'] !== 'revoked') await api(platform, 'DELETE', `/acme/v1/workers/${String(w['id'])}`, acme.key);
    }
    await waitFor(() => !platform.gateway.fleet.workers.some((w) => w.source === 'tunnel'), 5000, 'the other tunnels to close');
    const created = await api(platform, 'POST', '/acme/v1/workers/join-keys', acme.key, { name: 'slow' });
    // ~100 s per full answer: only a cancel (or the deadline) ends a generation early.
    const { workerId } = await selfHosted(String(created.body['key']), 'acme-slow', { SIM_TOKENS_PER_SECOND: '20', SIM_RESPONSE_TOKENS: '2000' });
    const tunnelWorker = () => platform.gateway.fleet.workers.find((w) => w.address === `tunnel:${workerId}`);
    const idle = () => tunnelWorker()?.status?.inFlightCount === 0;

    const abort = new AbortController();
    const r = await fetch(`${platform.baseUrl('acme', 'own')}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${acme.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
      signal: abort.signal,
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-xerotier-worker-id'), workerId);
    const reader = r.body!.getReader();
    await reader.read();
    await waitFor(() => tunnelWorker()?.status?.inFlightCount === 1, 3000, 'the generation to run on the worker');
    const cancelled = performance.now();
    abort.abort();
    await waitFor(idle, 3000, 'the worker to stop the cancelled generation');
    console.log(`# client gone -> generation stopped on the self-hosted worker: ${Math.round(performance.now() - cancelled)} ms`);

    const started = performance.now();
    const timedOut = await fetch(`${platform.baseUrl('acme', 'own')}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${acme.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
    });
    const error = ((await timedOut.json()) as { error?: { code?: string } }).error;
    const tookMs = performance.now() - started;
    assert.equal(timedOut.status, 504, `the tier's request timeout ends the request (${error?.code})`);
    assert.equal(error?.code, 'request_timeout');
    assert.ok(tookMs >= REQUEST_TIMEOUT_S * 1000 - 100 && tookMs < REQUEST_TIMEOUT_S * 1000 + 3000, `answered at the deadline (${Math.round(tookMs)} ms)`);
    await waitFor(idle, 3000, 'the worker to stop the generation past its deadline');
  });
});
