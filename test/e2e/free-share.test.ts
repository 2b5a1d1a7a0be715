/**
 * Free-tier share under contention, end to end: one simulator worker (capacity 4, queue 16)
 * behind a real gateway (real gRPC), a Free-tier key and a paid (CPU Standard) key created through
 * the auth service's admin API. While paid requests queue on the worker, Free requests may occupy
 * at most ROUTING_FREE_SHARE of the running capacity (0.25 × 4 = 1 request): one Free request is
 * admitted, the others get 503 capacity_exceeded with Retry-After, and paid requests keep being
 * admitted and served. Without a queue Free is served like anyone else, beyond that share too.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AuthServiceDefinition, Scope } from '../../gen/xerotier/auth/v1/auth_service.js';
import { callOptions, createAppClient, createGrpcChannel } from '../../lib/grpc/client.js';
import { DEFAULT_TIERS_FILE } from '../../lib/tiers/tier-table.js';
import { createSimulatorEngine } from '../../services/inference/src/engines/simulator/simulator-engine.js';
import { SIMULATOR_DEFAULTS, startPlatform, waitFor, type Platform } from '../helpers/platform.js';

/** The default tier table with Free and CPU Standard unthrottled: this test is about capacity, not quota. */
function tiersWithoutRateLimits(): string {
  const table = JSON.parse(readFileSync(DEFAULT_TIERS_FILE, 'utf8')) as { tiers: Record<string, Record<string, unknown>> };
  for (const tier of ['free', 'cpu_standard']) Object.assign(table.tiers[tier]!, { requestsPerMinute: 1_000_000, tokensPerMinute: 1_000_000_000 });
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'tiers-')), 'tiers.json');
  writeFileSync(file, JSON.stringify(table));
  return file;
}

interface Answer {
  status: number;
  retryAfter: string | null;
  code: string | undefined;
  content: string;
}

async function chat(base: string, key: string): Promise<Answer> {
  const r = await fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'simulator', messages: [{ role: 'user', content: 'hello' }], max_tokens: 8 }),
  });
  const body = (await r.json()) as { error?: { code?: string }; choices?: Array<{ message?: { content?: string } }> };
  return { status: r.status, retryAfter: r.headers.get('retry-after'), code: body.error?.code, content: body.choices?.[0]?.message?.content ?? '' };
}

describe('routing: the Free-tier share under contention', () => {
  let platform: Platform;
  let freeKey = '';
  let paidKey = '';
  const inFlight = (): number => platform.gateway.fleet.workers[0]!.localInFlight;

  before(async () => {
    const tiers = tiersWithoutRateLimits();
    platform = await startPlatform({
      // 8 tokens at 10 tokens/s: each request holds its slot about 0.8 s, long enough to queue behind.
      engines: [createSimulatorEngine({ ...SIMULATOR_DEFAULTS, tokensPerSecond: 10, responseTokens: 8 })],
      workerEnv: { INFERENCE_CAPACITY: '4', INFERENCE_QUEUE_CAPACITY: '16' },
      gatewayEnv: { TIERS_FILE: tiers, ROUTING_STRATEGY: 'scored', ROUTING_FREE_SHARE: '0.25' },
      quotaEnv: { TIERS_FILE: tiers },
    });
    const channel = createGrpcChannel(`127.0.0.1:${platform.authPort}`);
    const admin = createAppClient(AuthServiceDefinition, channel, { address: '', target: 'auth' });
    await admin.createProject({ slug: 'acme', name: 'Acme' }, callOptions('t'));
    for (const [slug, tier] of [
      ['free', 'free'],
      ['paid', 'cpu_standard'],
    ] as const) {
      await admin.createEndpoint({ project: 'acme', slug, tier, model: 'simulator', hardwarePool: 'cpu', contextWindow: 2048 }, callOptions('t'));
    }
    const key = async (endpointSlug: string): Promise<string> =>
      (await admin.createApiKey({ project: 'acme', name: endpointSlug, scopes: [Scope.SCOPE_INFERENCE], endpointSlug }, callOptions('t'))).secret;
    freeKey = await key('free');
    paidKey = await key('paid');
    channel.close();
  });
  after(async () => {
    await platform?.stop();
  });

  it('serves Free normally when nothing is queued, beyond its share too', async () => {
    // Three at once on 4 slots: more than the 1-request share, but nobody waits, so all are served.
    const answers = await Promise.all([0, 1, 2].map(() => chat(platform.baseUrl('acme', 'free'), freeKey)));
    for (const a of answers) {
      assert.equal(a.status, 200, `Free without contention: ${a.status} ${a.code}`);
      assert.ok(a.content.length > 0, 'a Free answer has content');
    }
  });

  it('holds Free to its share while paid requests queue; paid keeps being admitted and served', async () => {
    await waitFor(() => inFlight() === 0, 5000, 'the worker to be idle');
    // 8 paid requests on 4 slots: 4 run, 4 queue.
    const paid = Array.from({ length: 8 }, () => chat(platform.baseUrl('acme', 'paid'), paidKey));
    await waitFor(() => inFlight() >= 8, 5000, 'the paid requests to reach the worker');

    // The share is 1 of 4 running slots: the first Free request is admitted (and queues behind the
    // paid ones), the next ones are refused while it runs.
    const admitted = chat(platform.baseUrl('acme', 'free'), freeKey);
    await waitFor(() => inFlight() >= 9, 5000, 'the first Free request to reach the worker');
    const refused: Answer[] = [];
    for (let i = 0; i < 3; i++) refused.push(await chat(platform.baseUrl('acme', 'free'), freeKey));
    for (const a of refused) {
      assert.equal(a.status, 503, `a Free request beyond the share under contention: ${a.status}`);
      assert.equal(a.code, 'capacity_exceeded');
      assert.ok(Number(a.retryAfter) >= 1, `Retry-After on a refused Free request: ${a.retryAfter}`);
    }

    // Paid traffic is still admitted while the queue lasts, and every paid request is served.
    assert.ok(inFlight() > platform.gateway.fleet.workers[0]!.status!.capacity, 'the worker still holds a queue');
    const late = [0, 1].map(() => chat(platform.baseUrl('acme', 'paid'), paidKey));
    for (const a of await Promise.all([...paid, ...late])) {
      assert.equal(a.status, 200, `paid under contention: ${a.status} ${a.code}`);
      assert.ok(a.content.length > 0, 'a paid answer has content');
    }
    const first = await admitted;
    assert.equal(first.status, 200, `the Free request within the share: ${first.status} ${first.code}`);

    // Contention over: Free is served again.
    await waitFor(() => inFlight() === 0, 10_000, 'the queue to drain');
    const again = await chat(platform.baseUrl('acme', 'free'), freeKey);
    assert.equal(again.status, 200, `Free after the contention: ${again.status} ${again.code}`);
  });
});
