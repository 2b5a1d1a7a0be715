/**
 * Usage ledger end to end: requests of every kind through the in-process platform (real gRPC to
 * auth, quota, a simulator worker and the ledger) leave exactly one record each, with the token
 * counts the client saw; usage is readable only by the project's own management keys.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AuthServiceDefinition, Scope } from '../../gen/xerotier/auth/v1/auth_service.js';
import { callOptions, createAppClient, createGrpcChannel } from '../../lib/grpc/client.js';
import { createSimulatorEngine } from '../../services/inference/src/engines/simulator/simulator-engine.js';
import { SIMULATOR_DEFAULTS, startPlatform, waitFor, type Platform } from '../helpers/platform.js';
import { sseRequest, type SseResult } from '../helpers/sse-client.js';
import { cpuStandardTiers } from '../helpers/tiers.js';

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
}

interface RecordJson {
  id: string;
  api_key_id: string;
  endpoint: string;
  model: string;
  worker_id: string | null;
  status: number;
  error_code: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  time_to_first_token_ms: number | null;
  duration_ms: number;
  started_at: number;
  cancelled: boolean;
}

/** What one client request saw: its request id, status, usage (when shown) and deltas received. */
interface Seen {
  kind: 'json' | 'stream' | 'invalid' | 'rate_limited' | 'cancelled';
  id: string;
  status: number;
  usage: Usage | undefined;
  deltas: number;
}

const ask = (extra: Record<string, unknown>) => ({ model: 'm', messages: [{ role: 'user', content: 'hello there' }], ...extra });

async function getJson(platform: Platform, path: string, key: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${platform.gateway.port}${path}`, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, body: await res.json() };
}

async function allRecords(platform: Platform, project: string, key: string): Promise<RecordJson[]> {
  const out: RecordJson[] = [];
  let after = '';
  for (;;) {
    const { status, body } = await getJson(platform, `/${project}/v1/usage/records?start_time=0&limit=7${after ? `&after=${after}` : ''}`, key);
    assert.equal(status, 200, JSON.stringify(body));
    out.push(...(body.data as RecordJson[]));
    if (!body.has_more) return out;
    after = body.last_id as string;
  }
}

function seen(kind: Seen['kind'], r: SseResult): Seen {
  const id = String(r.headers['x-request-id']);
  if (r.ending === 'json') {
    const body = r.body ? (JSON.parse(r.body) as { usage?: Usage }) : {};
    return { kind, id, status: r.status, usage: body.usage, deltas: 0 };
  }
  const events = r.events as Array<{ usage?: Usage | null; choices?: Array<{ delta?: { content?: string } }> }>;
  const usage = events.find((e) => e.usage)?.usage ?? undefined;
  const deltas = events.filter((e) => e.choices?.[0]?.delta?.content).length;
  return { kind, id, status: r.status, usage, deltas };
}

describe('usage ledger through the platform', () => {
  let platform: Platform;
  let acmeKey: string;
  let inferenceOnlyKey: string;
  before(async () => {
    // Tokens/min low enough that a prompt of ~1,250 tokens can never fit (429 for good), high
    // enough for every other request here.
    const tiers = cpuStandardTiers({ requestsPerMinute: 1_000_000, tokensPerMinute: 1_000 });
    platform = await startPlatform({
      // Slow enough to cancel a stream after its first token.
      engines: [createSimulatorEngine({ ...SIMULATOR_DEFAULTS, tokensPerSecond: 100, responseTokens: 12 })],
      workerEnv: { INFERENCE_CAPACITY: '32', INFERENCE_QUEUE_CAPACITY: '32' },
      gatewayEnv: { TIERS_FILE: tiers },
      quotaEnv: { TIERS_FILE: tiers },
    });
    const channel = createGrpcChannel(`127.0.0.1:${platform.authPort}`);
    const admin = createAppClient(AuthServiceDefinition, channel, { address: '', target: 'auth' });
    await admin.createProject({ slug: 'acme', name: 'Acme' }, callOptions('t'));
    acmeKey = (await admin.createApiKey({ project: 'acme', name: 'acme', scopes: [Scope.SCOPE_MANAGEMENT], endpointSlug: '' }, callOptions('t'))).secret;
    inferenceOnlyKey = (await admin.createApiKey({ project: 'demo', name: 'inf', scopes: [Scope.SCOPE_INFERENCE], endpointSlug: '' }, callOptions('t'))).secret;
    channel.close();
  });
  after(async () => {
    await platform?.stop();
  });

  it('N requests of mixed kinds leave exactly N records with the tokens each client saw', async () => {
    const port = platform.gateway.port;
    const path = '/demo/chat/v1/chat/completions';
    const send = (body: unknown, onEvent?: (d: unknown) => boolean) =>
      sseRequest({ port, path, key: platform.demoKey, body, ...(onEvent ? { onEvent } : {}) });
    const runs: Array<Promise<Seen>> = [];
    for (let i = 0; i < 6; i++) runs.push(send(ask({ max_tokens: 20 })).then((r) => seen('json', r)));
    for (let i = 0; i < 6; i++) {
      runs.push(send(ask({ max_tokens: 20, stream: true, stream_options: { include_usage: true } })).then((r) => seen('stream', r)));
    }
    for (let i = 0; i < 3; i++) runs.push(send(ask({ max_tokens: 20, n: 2 })).then((r) => seen('invalid', r)));
    const huge = { messages: [{ role: 'user', content: 'word '.repeat(1000) }] };
    for (let i = 0; i < 3; i++) runs.push(send(ask(huge)).then((r) => seen('rate_limited', r)));
    for (let i = 0; i < 2; i++) {
      runs.push(send(ask({ max_tokens: 20, stream: true }), () => true).then((r) => seen('cancelled', r)));
    }
    // Refused before the key is known: no record.
    const unauthenticated = await sseRequest({ port, path, key: 'xero_demo_nope', body: ask({}) });
    assert.equal(unauthenticated.status, 401);
    const results = await Promise.all(runs);
    const n = results.length;

    await waitFor(() => platform.gateway.usagePending() === 0, 5_000, 'usage flushed').catch((e: unknown) => {
      console.log(platform.logs.lines.filter((l) => /usage|ledger/.test(l)).slice(0, 5).join('\n'));
      throw e;
    });
    let records: RecordJson[] = [];
    const until = Date.now() + 5_000;
    while (records.length < n && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
      records = await allRecords(platform, 'demo', platform.demoKey);
    }
    // The usage reads themselves are not inference requests and leave no record.
    assert.equal(records.length, n, `exactly ${n} records`);
    const byId = new Map(records.map((r) => [r.id, r]));
    assert.equal(byId.size, n, 'no duplicates');

    for (const s of results) {
      const r = byId.get(s.id);
      assert.ok(r, `record for ${s.kind} request ${s.id}`);
      assert.equal(r.endpoint, 'chat');
      assert.match(r.api_key_id, /^key_/);
      assert.ok(r.duration_ms >= 0 && r.started_at > 0);
      switch (s.kind) {
        case 'json':
        case 'stream':
          assert.equal(s.status, 200);
          assert.ok(s.usage, `${s.kind} client saw usage`);
          assert.deepEqual([r.status, r.error_code, r.cancelled], [200, null, false]);
          assert.deepEqual([r.prompt_tokens, r.completion_tokens, r.cached_tokens], [s.usage.prompt_tokens, s.usage.completion_tokens, 0]);
          assert.ok(r.worker_id && r.time_to_first_token_ms !== null && r.time_to_first_token_ms <= r.duration_ms);
          assert.match(r.model, /simulator/);
          break;
        case 'invalid':
          assert.deepEqual([s.status, r.status, r.error_code, r.prompt_tokens, r.completion_tokens], [400, 400, 'invalid_request', 0, 0]);
          assert.equal(r.worker_id, null);
          break;
        case 'rate_limited':
          assert.deepEqual([s.status, r.status, r.error_code, r.prompt_tokens, r.completion_tokens], [429, 429, 'tokens_exceed_limit', 0, 0]);
          break;
        case 'cancelled':
          assert.equal(r.cancelled, true);
          assert.equal(r.status, 200, 'the stream had started');
          assert.ok(s.deltas >= 1);
          // Billed: what reached the client before it left (at least what it read), never the full answer's more.
          assert.ok(r.completion_tokens >= s.deltas && r.completion_tokens <= 12, `completion ${r.completion_tokens}`);
          assert.ok(r.prompt_tokens > 0);
          break;
      }
    }

    // Grouped reads agree with the records.
    const sum = (f: (r: RecordJson) => number) => records.reduce((a, r) => a + f(r), 0);
    for (const groupBy of ['day', 'hour', 'key', 'endpoint', 'model']) {
      const { status, body } = await getJson(platform, `/demo/v1/usage?start_time=0&group_by=${groupBy}`, platform.demoKey);
      assert.equal(status, 200, JSON.stringify(body));
      const buckets = body.data as Array<{ requests: number; prompt_tokens: number; completion_tokens: number; errors: number; cancelled: number }>;
      assert.equal(buckets.reduce((a, b) => a + b.requests, 0), n, groupBy);
      assert.equal(buckets.reduce((a, b) => a + b.prompt_tokens, 0), sum((r) => r.prompt_tokens), groupBy);
      assert.equal(buckets.reduce((a, b) => a + b.completion_tokens, 0), sum((r) => r.completion_tokens), groupBy);
      assert.equal(buckets.reduce((a, b) => a + b.errors, 0), 6, `${groupBy}: 3 invalid + 3 rate-limited`);
      assert.equal(buckets.reduce((a, b) => a + b.cancelled, 0), 2, groupBy);
    }
  });

  it("another project's usage is never readable", async () => {
    const cross = await getJson(platform, '/demo/v1/usage', acmeKey);
    assert.equal(cross.status, 403);
    assert.equal(cross.body.error.code, 'cross_project_access');
    const crossRecords = await getJson(platform, '/demo/v1/usage/records', acmeKey);
    assert.equal(crossRecords.status, 403);
    const scope = await getJson(platform, '/demo/v1/usage', inferenceOnlyKey);
    assert.equal(scope.status, 403);
    assert.equal(scope.body.error.code, 'scope_insufficient');
    const anonymous = await fetch(`http://127.0.0.1:${platform.gateway.port}/demo/v1/usage`);
    assert.equal(anonymous.status, 401);
    // Acme's own usage is readable and holds nothing of demo's.
    const own = await getJson(platform, '/acme/v1/usage/records?start_time=0', acmeKey);
    assert.equal(own.status, 200);
    assert.deepEqual(own.body.data, []);
  });

  it('refuses parameters it cannot honour, by name', async () => {
    for (const [query, param] of [
      ['group_by=week', 'group_by'],
      ['start_time=yesterday', 'start_time'],
      ['start_time=100&end_time=50', 'end_time'],
      ['limit=0', 'limit'],
      ['project=acme', 'project'],
    ] as const) {
      const { status, body } = await getJson(platform, `/demo/v1/usage?${query}`, platform.demoKey);
      assert.equal(status, 400, query);
      assert.equal(body.error.param, param, query);
    }
  });
});
