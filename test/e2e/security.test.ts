/**
 * Regression tests for defects an adversarial probe found, each through the real gateway:
 * a client-chosen X-Request-ID must not buy free requests or tokens; client mistakes in the path,
 * the body encoding or a parameter's type are 400s that say what is wrong, never 500s; keys in a
 * query string never reach a log line; repeated Authorization headers are refused; a prompt larger
 * than the context window is 400 context_length_exceeded; every 429 carries Retry-After; slow
 * clients are cut off by the configured timeouts.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { AuthServiceDefinition } from '../../gen/xerotier/auth/v1/auth_service.js';
import { callOptions, createAppClient, createGrpcChannel } from '../../lib/grpc/client.js';
import { startPlatform, type Platform } from '../helpers/platform.js';
import { rawRequest } from '../helpers/raw-request.js';
import { cpuStandardTiers } from '../helpers/tiers.js';

const PATH = '/demo/chat/v1/chat/completions';
const ask = (extra: object = {}) => ({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5, ...extra });

/**
 * Sends bytes as they are (requests say `Connection: close`) and returns the raw response, or ''
 * if the server closed without one. The socket is not half-closed: a real client keeps it open.
 */
function rawSocket(port: number, bytes: Buffer | string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let out = '';
    socket.on('data', (d) => (out += d.toString('utf8')));
    socket.on('end', () => resolve(out));
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
    socket.write(bytes);
  });
}

function statusOf(raw: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
}

describe('security: quota cannot be bypassed with a chosen X-Request-ID', () => {
  it('charges every request even when all of them carry the same X-Request-ID', async () => {
    const file = cpuStandardTiers({ requestsPerMinute: 5, tokensPerMinute: 1_000_000 });
    const platform = await startPlatform({ gatewayEnv: { TIERS_FILE: file }, quotaEnv: { TIERS_FILE: file } });
    try {
      const statuses: number[] = [];
      const ids = new Set<string>();
      for (let i = 0; i < 12; i++) {
        const r = await fetch(`${platform.baseUrl()}/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${platform.demoKey}`, 'content-type': 'application/json', 'x-request-id': 'fixed-rid-1' },
          body: JSON.stringify(ask()),
        });
        await r.arrayBuffer();
        statuses.push(r.status);
        ids.add(r.headers.get('x-request-id') ?? '');
      }
      assert.equal(statuses.filter((s) => s === 200).length, 5, `statuses ${statuses.join(',')}`);
      assert.equal(statuses.filter((s) => s === 429).length, 7);
      assert.equal(ids.size, 12, 'every response has its own server-chosen request id');
      assert.ok(!ids.has('fixed-rid-1'));
      // The client's id is still there for correlation, in the log line of its request.
      assert.ok(platform.logs.lines.some((l) => l.includes('"clientRequestId":"fixed-rid-1"')));
    } finally {
      await platform.stop();
    }
  });

  it('charges tokens for every request with a repeated X-Request-ID', async () => {
    // 60 tokens per minute; each request reserves about 2 (prompt) + 5 (max tokens) tokens.
    const file = cpuStandardTiers({ requestsPerMinute: 1000, tokensPerMinute: 60 });
    const platform = await startPlatform({ gatewayEnv: { TIERS_FILE: file }, quotaEnv: { TIERS_FILE: file } });
    try {
      let ok = 0;
      for (let i = 0; i < 30; i++) {
        const r = await fetch(`${platform.baseUrl()}/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${platform.demoKey}`, 'content-type': 'application/json', 'x-request-id': 'same' },
          body: JSON.stringify(ask({ max_tokens: 20 })),
        });
        await r.arrayBuffer();
        if (r.status === 200) ok += 1;
      }
      assert.ok(ok > 0 && ok < 30, `${ok} of 30 admitted on a 60 tokens/min tier`);
    } finally {
      await platform.stop();
    }
  });
});

describe('security: client mistakes are 400s, secrets stay out of logs', () => {
  let platform: Platform;
  before(async () => {
    platform = await startPlatform({ gatewayEnv: { GATEWAY_HEADERS_TIMEOUT_MS: '1000', GATEWAY_REQUEST_RECEIVE_TIMEOUT_MS: '1500' } });
  });
  after(async () => platform.stop());

  it('malformed percent-encoding in the path is 400, unauthenticated or not', async () => {
    for (const path of ['/%ZZ/chat/v1/models', '/demo/%E0%A4%A/v1/models', '/demo/chat%/v1/chat/completions']) {
      const method = path.endsWith('completions') ? 'POST' : 'GET';
      for (const key of [undefined, platform.demoKey]) {
        const r = await rawRequest(platform.gateway.port, undefined, path, key, method === 'POST' ? ask() : undefined, method);
        assert.equal(r.status, 400, `${method} ${path} → ${r.status} ${r.body}`);
        assert.equal((JSON.parse(r.body) as { error: { type: string } }).error.type, 'invalid_request_error');
      }
    }
    assert.ok(!platform.logs.lines.some((l) => l.includes('"level":50')), 'no error-level log line for a client mistake');
  });

  it('corrupt or truncated compressed bodies are 400', async () => {
    const good = gzipSync(JSON.stringify(ask()));
    const bodies: Array<[string, Buffer]> = [
      ['gzip', good.subarray(0, good.length - 6)],
      ['gzip', Buffer.from('not gzip at all')],
      ['deflate', Buffer.from('garbage')],
      ['br', Buffer.from([0xff, 0xff, 0xff, 0xff])],
    ];
    for (const [encoding, body] of bodies) {
      for (const auth of [false, true]) {
        const head =
          `POST ${PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Encoding: ${encoding}\r\n` +
          (auth ? `Authorization: Bearer ${platform.demoKey}\r\n` : '') +
          `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
        const raw = await rawSocket(platform.gateway.port, Buffer.concat([Buffer.from(head), body]));
        assert.equal(statusOf(raw), 400, `${encoding} (auth ${auth}) → ${raw.slice(0, 200)}`);
      }
    }
    assert.ok(!platform.logs.lines.some((l) => l.includes('"level":50')), 'no error-level log line for a client mistake');
  });

  it('wrong-typed values are named as such, not as missing', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":"5"}', 'max_tokens', /Invalid type for 'max_tokens'.*string/],
      ['{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1.5}', 'max_tokens', /Invalid.*'max_tokens'/],
      ['{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1e309}', 'max_tokens', /'max_tokens'.*out of range/],
      ['{"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"}', 'stream', /Invalid type for 'stream'.*string/],
      ['{"messages":[{"role":"user","content":"x"}]}', 'model', /Missing required parameter: 'model'/],
    ];
    for (const [body, param, message] of cases) {
      const r = await rawRequest(platform.gateway.port, undefined, PATH, platform.demoKey, body);
      assert.equal(r.status, 400, body);
      const e = (JSON.parse(r.body) as { error: { param: string; message: string } }).error;
      assert.equal(e.param, param, body);
      assert.match(e.message, message, body);
      assert.doesNotMatch(e.message, param === 'model' ? /Invalid type/ : /Missing required/, body);
    }
  });

  it('a prompt larger than the context window is 400 context_length_exceeded, not a 429', async () => {
    // The demo endpoint's context window is far below 400k characters (~100k tokens).
    const r = await rawRequest(platform.gateway.port, undefined, PATH, platform.demoKey, {
      model: 'm',
      messages: [{ role: 'user', content: 'word '.repeat(80_000) }],
    });
    assert.equal(r.status, 400, r.body);
    const e = (JSON.parse(r.body) as { error: { code: string; param: string } }).error;
    assert.equal(e.code, 'context_length_exceeded');
    assert.equal(e.param, 'messages');
  });

  it('a key in the query string never reaches a log line', async () => {
    const secret = platform.demoKey;
    await rawRequest(platform.gateway.port, undefined, `/demo/chat/v1/models?api_key=${secret}&limit=3`, undefined, undefined, 'GET');
    await rawRequest(platform.gateway.port, undefined, `/demo/chat/v1/models?q=${secret}`, undefined, undefined, 'GET');
    await rawRequest(platform.gateway.port, undefined, `/${secret}/chat/v1/models`, undefined, undefined, 'GET');
    const secretPart = secret.slice(secret.lastIndexOf('_') + 1);
    assert.ok(!platform.logs.lines.some((l) => l.includes(secretPart)), 'the key appears in no log line');
    assert.ok(platform.logs.lines.some((l) => l.includes('api_key=[redacted]&limit=3')), 'the rest of the URL is still logged');
  });

  it('refuses repeated Authorization or Host headers', async () => {
    const twoKeys =
      `GET /demo/chat/v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${platform.demoKey}\r\n` +
      `Authorization: Bearer xero_other_x\r\nConnection: close\r\n\r\n`;
    assert.equal(statusOf(await rawSocket(platform.gateway.port, twoKeys)), 400);
    const twoHosts = `GET /v1/models HTTP/1.1\r\nHost: chat.demo.api.localhost\r\nHost: other.demo.api.localhost\r\nAuthorization: Bearer ${platform.demoKey}\r\nConnection: close\r\n\r\n`;
    const raw = await rawSocket(platform.gateway.port, twoHosts);
    assert.equal(statusOf(raw), 400, raw.slice(0, 200));
    // The same on the inference routes, path-based and DNS-based.
    const body = JSON.stringify(ask());
    const post = (target: string, headers: string): string =>
      `POST ${target} HTTP/1.1\r\n${headers}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
    const keysOnChat = await rawSocket(
      platform.gateway.port,
      post(PATH, `Host: 127.0.0.1\r\nAuthorization: Bearer ${platform.demoKey}\r\nAuthorization: Bearer xero_other_x\r\n`),
    );
    assert.equal(statusOf(keysOnChat), 400, keysOnChat.slice(0, 200));
    assert.match(keysOnChat, /"code":"duplicate_header"/);
    const hostsOnChat = await rawSocket(
      platform.gateway.port,
      post('/v1/chat/completions', `Host: chat.demo.api.localhost\r\nHost: other.demo.api.localhost\r\nAuthorization: Bearer ${platform.demoKey}\r\n`),
    );
    assert.equal(statusOf(hostsOnChat), 400, hostsOnChat.slice(0, 200));
    assert.match(hostsOnChat, /"code":"duplicate_header"/);
  });

  it('answers the inference routes alike in their canonical and non-canonical spellings', async () => {
    for (const path of [PATH, `${PATH}/`, '/demo/chat/V1/Chat/Completions', '/demo/ch%61t/v1/chat/completions?x=1']) {
      const r = await rawRequest(platform.gateway.port, undefined, path, platform.demoKey, ask(), 'POST');
      assert.equal(r.status, 200, `${path}: ${r.body.slice(0, 200)}`);
      assert.equal((JSON.parse(r.body) as { object: string }).object, 'chat.completion', path);
    }
    const badEncoding = await rawRequest(platform.gateway.port, undefined, '/demo/ch%E0t/v1/chat/completions', platform.demoKey, ask(), 'POST');
    assert.equal(badEncoding.status, 400, badEncoding.body);
    const wrongMethod = await rawRequest(platform.gateway.port, undefined, PATH, platform.demoKey, undefined, 'GET');
    assert.equal(wrongMethod.status, 404, wrongMethod.body);
    assert.equal((JSON.parse(wrongMethod.body) as { error: { code: string } }).error.code, 'unknown_route');
  });

  it('cuts off a client that never finishes its headers or its body', async () => {
    const started = performance.now();
    const slowHeaders = await rawSocket(platform.gateway.port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1');
    const headersMs = performance.now() - started;
    assert.ok(statusOf(slowHeaders) === 408 || slowHeaders === '', slowHeaders.slice(0, 100));
    const bodyStart = performance.now();
    const slowBody = await rawSocket(
      platform.gateway.port,
      `POST ${PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":`,
    );
    const bodyMs = performance.now() - bodyStart;
    assert.ok(statusOf(slowBody) === 408 || slowBody === '', slowBody.slice(0, 100));
    console.log(`# slow headers cut after ${headersMs.toFixed(0)} ms (limit 1000), slow body after ${bodyMs.toFixed(0)} ms (limit 1500)`);
    // Node checks these timeouts on a timer of its own; a generous upper bound catches "never".
    assert.ok(headersMs < 5000 && bodyMs < 6000, `${headersMs} / ${bodyMs}`);
  });
});

describe('security: a management key never grants, sees or takes over more than it has', () => {
  it('an endpoint-bound key can only mint, list, rotate and revoke keys within its binding and scopes', async () => {
    const platform = await startPlatform();
    const channel = createGrpcChannel(`127.0.0.1:${platform.authPort}`);
    const admin = createAppClient(AuthServiceDefinition, channel, { address: '', target: 'auth' });
    try {
      await admin.createEndpoint({ project: 'demo', slug: 'other', tier: 'cpu_standard', model: 'simulator', hardwarePool: '', contextWindow: 0 }, callOptions('t'));
      const mgmt = (key: string, method: string, path: string, body?: unknown) =>
        rawRequest(platform.gateway.port, undefined, `/demo/v1/management${path}`, key, body, method);
      const json = (r: { body: string }) => JSON.parse(r.body) as Record<string, unknown> & { error?: { code: string } };
      const chatOn = (key: string, endpoint: string) =>
        rawRequest(platform.gateway.port, undefined, `/demo/${endpoint}/v1/chat/completions`, key, ask(), 'POST');

      // The demo key (unbound, inference + management) makes a key bound to `chat`.
      const bound = json(await mgmt(platform.demoKey, 'POST', '/api-keys', { name: 'bound', scopes: ['inference', 'management'], endpoint: 'chat' }));
      const boundKey = String(bound['key']);
      assert.equal((await chatOn(boundKey, 'other')).status, 403, 'the bound key is refused on another endpoint');

      // 1. It cannot mint a key for another endpoint…
      const other = await mgmt(boundKey, 'POST', '/api-keys', { name: 'escape', scopes: ['inference'], endpoint: 'other' });
      assert.equal(other.status, 403, other.body);
      assert.equal(json(other).error?.code, 'endpoint_binding_exceeds_caller');
      // …and a key it mints without naming an endpoint is bound to its own.
      const minted = await mgmt(boundKey, 'POST', '/api-keys', { name: 'child', scopes: ['inference', 'management'] });
      assert.equal(minted.status, 201, minted.body);
      assert.equal(json(minted)['endpoint'], 'chat');
      assert.equal((await chatOn(String(json(minted)['key']), 'other')).status, 403, 'the minted key does not escape either');
      assert.equal((await chatOn(String(json(minted)['key']), 'chat')).status, 200);

      // 2. It sees only keys within its reach: not the unbound demo key.
      const listed = json(await mgmt(boundKey, 'GET', '/api-keys')) as { data: Array<{ id: string; endpoint: string | null }> };
      assert.ok(listed.data.length >= 2);
      assert.ok(listed.data.every((k) => k.endpoint === 'chat'), JSON.stringify(listed.data));
      const all = json(await mgmt(platform.demoKey, 'GET', '/api-keys')) as { data: Array<{ id: string; name: string }> };
      const demoId = all.data.find((k) => k.name !== 'bound' && k.name !== 'child')?.id;
      assert.ok(demoId);

      // 3. It cannot rotate or revoke a key outside its reach: answered as an unknown key.
      for (const [method, path] of [['POST', `/api-keys/${demoId}/rotate`], ['DELETE', `/api-keys/${demoId}`], ['GET', `/api-keys/${demoId}`]] as const) {
        const r = await mgmt(boundKey, method, path, method === 'POST' ? {} : undefined);
        assert.equal(r.status, 404, `${method} ${path}: ${r.body}`);
        assert.doesNotMatch(r.body, /xero_demo_/);
      }
      assert.equal((await chatOn(platform.demoKey, 'chat')).status, 200, 'the demo key still works');

      // 4. A management-only key cannot mint a key with inference.
      const mOnly = String(json(await mgmt(platform.demoKey, 'POST', '/api-keys', { name: 'm-only', scopes: ['management'] }))['key']);
      const up = await mgmt(mOnly, 'POST', '/api-keys', { name: 'up', scopes: ['inference'] });
      assert.equal(up.status, 403, up.body);
      assert.equal(json(up).error?.code, 'key_scope_exceeds_caller');
    } finally {
      channel.close();
      await platform.stop();
    }
  });

  it('expires_at beyond what dates can hold is a 400 naming the field', async () => {
    const platform = await startPlatform();
    try {
      for (const expires_at of [1e15, 1e18, 253_402_300_800]) {
        const r = await rawRequest(platform.gateway.port, undefined, '/demo/v1/management/api-keys', platform.demoKey, { name: 'x', expires_at }, 'POST');
        assert.equal(r.status, 400, `${expires_at}: ${r.body}`);
        assert.equal((JSON.parse(r.body) as { error: { param: string } }).error.param, 'expires_at');
      }
    } finally {
      await platform.stop();
    }
  });
});

describe('security: public health says nothing about the fleet', () => {
  it('/healthz and /readyz show status and counts only; per-worker detail is on the metrics port', async () => {
    const platform = await startPlatform({ gatewayEnv: { GATEWAY_METRICS_PORT: '0' } });
    try {
      const health = await rawRequest(platform.gateway.port, undefined, '/healthz', undefined, undefined, 'GET');
      assert.equal(health.status, 200);
      assert.deepEqual(JSON.parse(health.body), { status: 'ok' });
      const ready = await rawRequest(platform.gateway.port, undefined, '/readyz', undefined, undefined, 'GET');
      assert.equal(ready.status, 200);
      assert.deepEqual(JSON.parse(ready.body), { status: 'ready', workers: { ready: 1, total: 1 } });
      const detail = await fetch(`http://127.0.0.1:${platform.gateway.metricsPort}/workers`);
      const workers = ((await detail.json()) as { workers: Array<{ pool: string; breaker: string; connected: boolean }> }).workers;
      assert.equal(workers.length, 1);
      assert.equal(workers[0]?.pool, 'cpu');
      assert.equal(workers[0]?.breaker, 'closed');
      assert.equal((workers[0] as unknown as { worker_id: string | null }).worker_id, platform.workers[0]!.workerId);
      // With its only worker gone the gateway is alive but not ready.
      await platform.workers[0]!.stop();
      const until = Date.now() + 5000;
      let status = 200;
      while (Date.now() < until && status === 200) {
        status = (await rawRequest(platform.gateway.port, undefined, '/readyz', undefined, undefined, 'GET')).status;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(status, 503);
      assert.equal((await rawRequest(platform.gateway.port, undefined, '/healthz', undefined, undefined, 'GET')).status, 200);
    } finally {
      await platform.stop();
    }
  });
});

describe('quota reservation without max_tokens', () => {
  it('a request omitting max_tokens on an endpoint whose context window exceeds the tokens/min gets 200', async () => {
    // tokens/min 3,000 below the simulator's 4,096-token context: reserving the whole context
    // left would refuse every such request for good.
    const file = cpuStandardTiers({ requestsPerMinute: 1000, tokensPerMinute: 3000 });
    const platform = await startPlatform({ gatewayEnv: { TIERS_FILE: file }, quotaEnv: { TIERS_FILE: file } });
    try {
      const body = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
      // Settlements travel in batches after the response: wait (bounded) until the gateway's
      // models route shows the last one, so each request below meets the real usage of the minute.
      const settled = async (): Promise<void> => {
        for (let i = 0; i < 100; i++) {
          const m = await rawRequest(platform.gateway.port, undefined, '/demo/chat/v1/models', platform.demoKey, undefined, 'GET');
          if (Number(m.headers['x-ratelimit-remaining-tokens']) >= 2500) return;
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      // An explicit max_tokens above the minute is admitted on an empty minute while the prompt fits.
      const big = await rawRequest(platform.gateway.port, undefined, PATH, platform.demoKey, { ...body, max_tokens: 4000 });
      assert.equal(big.status, 200, big.body);
      // Settled to the real usage, so the minute is not used up by reservations.
      for (let i = 0; i < 6; i++) {
        await settled();
        const r = await rawRequest(platform.gateway.port, undefined, PATH, platform.demoKey, body);
        assert.equal(r.status, 200, r.body);
      }
    } finally {
      await platform.stop();
    }
  });
});

describe('security: every 429 says when to retry', () => {
  it('a request that can never fit the tokens/min gets 429 with Retry-After and x-should-retry: false', async () => {
    const file = cpuStandardTiers({ requestsPerMinute: 1000, tokensPerMinute: 50 });
    const platform = await startPlatform({ gatewayEnv: { TIERS_FILE: file }, quotaEnv: { TIERS_FILE: file } });
    try {
      // A prompt of ~100 tokens can never fit a 50 tokens/min tier.
      const r = await rawRequest(platform.gateway.port, undefined, PATH, platform.demoKey, ask({ messages: [{ role: 'user', content: 'word '.repeat(80) }] }));
      assert.equal(r.status, 429, r.body);
      assert.equal(r.headers['x-should-retry'], 'false');
      assert.ok(Number(r.headers['retry-after']) >= 1, `retry-after ${String(r.headers['retry-after'])}`);
    } finally {
      await platform.stop();
    }
  });
});
