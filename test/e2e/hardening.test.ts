/**
 * Bad input gets a clear error and nothing breaks: body limits,
 * prototype-pollution payloads, deep nesting, header injection through X-Request-ID.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startPlatform, type Platform } from '../helpers/platform.js';
import { rawRequest } from '../helpers/raw-request.js';

const PATH = '/demo/chat/v1/chat/completions';

describe('input hardening', () => {
  let platform: Platform;
  before(async () => {
    platform = await startPlatform();
  });
  after(async () => platform.stop());

  it('refuses a body over the limit with 413 in the envelope', async () => {
    const big = { model: 'm', messages: [{ role: 'user', content: 'x'.repeat(1_100_000) }] };
    const r = await rawRequest(platform.gateway.port, undefined, PATH, platform.demoKey, big);
    assert.equal(r.status, 413);
    const body = JSON.parse(r.body) as { error: { type: string; code: string } };
    assert.equal(body.error.type, 'invalid_request_error');
    assert.equal(body.error.code, 'request_too_large');
  });

  it('ignores __proto__ payloads without polluting Object.prototype', async () => {
    const payload = '{"model":"m","messages":[{"role":"user","content":"hi"}],"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted2":"yes"}}}';
    const r = await rawRequest(platform.gateway.port, undefined, PATH, platform.demoKey, payload);
    assert.equal(r.status, 200, r.body);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.equal(({} as Record<string, unknown>)['polluted2'], undefined);
  });

  it('answers deeply nested JSON with a 400, not a crash', async () => {
    const deep = '{"model":"m","messages":[{"role":"user","content":"x"}],"metadata":' + '['.repeat(50_000) + ']'.repeat(50_000) + '}';
    const r = await rawRequest(platform.gateway.port, undefined, PATH, platform.demoKey, deep);
    assert.ok(r.status === 200 || r.status === 400, `status ${r.status}`);
    const again = await rawRequest(platform.gateway.port, undefined, '/healthz', undefined, undefined, 'GET');
    assert.equal(again.status, 200, 'the gateway is still alive');
  });

  it('never echoes an unsafe X-Request-ID (no header splitting)', async () => {
    const status = await new Promise<{ status: number; id: string | undefined }>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: platform.gateway.port,
          path: '/healthz',
          headers: { 'x-request-id': 'abc def<script>' },
        },
        (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, id: res.headers['x-request-id'] as string | undefined });
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(status.status, 200);
    assert.match(status.id ?? '', /^req_[0-9a-f]{24}$/, 'an unsafe id is replaced, not echoed');
    const kept = await rawRequest(platform.gateway.port, undefined, '/healthz', undefined, undefined, 'GET');
    assert.ok(kept.headers['x-request-id']);
  });

  it('validates parameters with precise 400s', async () => {
    const cases: Array<[object, string]> = [
      [{ model: 'm', messages: [] }, 'messages'],
      [{ model: 'm', messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role'],
      [{ model: 'm', messages: [{ role: 'user', content: 'x' }], top_p: 1.5 }, 'top_p'],
      [{ model: 'm', messages: [{ role: 'user', content: 'x' }], stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
      [{ model: 'm', messages: [{ role: 'user', content: 'x' }], n: 2 }, 'n'],
      [{ model: 'm', messages: [{ role: 'user', content: 'x' }], max_tokens: 0 }, 'max_tokens'],
      [{ model: '', messages: [{ role: 'user', content: 'x' }] }, 'model'],
    ];
    for (const [body, param] of cases) {
      const r = await rawRequest(platform.gateway.port, undefined, PATH, platform.demoKey, body);
      assert.equal(r.status, 400, `${JSON.stringify(body)} → ${r.status}`);
      const e = (JSON.parse(r.body) as { error: { param: string; type: string } }).error;
      assert.equal(e.type, 'invalid_request_error');
      assert.equal(e.param, param);
    }
  });
});
