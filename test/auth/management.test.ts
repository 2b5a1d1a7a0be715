/**
 * The management routes over HTTP against a real auth service: mounted the way gateway/app.ts
 * mounts them (mergeParams, JSON body parser and OpenAI error envelope outside the router).
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Scope } from '../../gen/xerotier/auth/v1/auth_service.js';
import { toHttpError } from '../../lib/errors/http.js';
import { createBreaker } from '../../gateway/src/breaker.js';
import { createAuthPort, type AuthPort } from '../../gateway/src/upstreams.js';
import { createLogger } from '../../lib/logging/logger.js';
import { managementRouter } from '../../gateway/src/routes/management.js';
import { startTestAuth, TEST_SERVICE_TOKEN, type TestAuth } from './helpers.js';

const KEY_FIELDS = ['created_at', 'endpoint', 'expires_at', 'id', 'last_used_at', 'name', 'object', 'prefix', 'revoked', 'scopes'];

describe('management routes', () => {
  let t: TestAuth;
  let server: Server;
  let base: string;
  let port: AuthPort;
  const silent = createLogger('gateway', 'silent');

  before(async () => {
    t = await startTestAuth('sqlite');
    const app = express();
    app.use((_req: Request, res: Response, next: NextFunction) => {
      res.locals['requestId'] = 'req_mgmt_test';
      next();
    });
    app.use(express.json());
    port = createAuthPort({
      address: t.address,
      serviceToken: TEST_SERVICE_TOKEN,
      timeoutMs: 5_000,
      logger: silent,
      breaker: createBreaker('auth', { errorThresholdPercentage: 50, volumeThreshold: 10, resetTimeoutMs: 10_000, rollingWindowMs: 10_000 }, silent),
    });
    app.use('/:project/v1/management', managementRouter({ auth: port }));
    app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      const mapped = toHttpError(err);
      res.status(mapped.status).set(mapped.headers).json(mapped.body);
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => server?.close(resolve));
    port?.close();
    await t?.stop();
  });

  async function call(method: string, path: string, key: string | undefined, body?: unknown) {
    const headers: Record<string, string> = {};
    if (key !== undefined) headers['authorization'] = `Bearer ${key}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = JSON.stringify(body);
    const res = await fetch(`${base}${path}`, init);
    const json = (await res.json()) as Record<string, unknown> & { error?: { code: string | null; param: string | null; message: string } };
    return { status: res.status, json, headers: res.headers };
  }

  it('refuses missing, invalid, under-scoped and foreign keys', async () => {
    assert.equal((await call('GET', '/demo/v1/management/api-keys', undefined)).json.error?.code, 'invalid_api_key');
    const bad = await call('GET', '/demo/v1/management/api-keys', 'xero_demo_garbage');
    assert.equal(bad.status, 401);
    const inference = await t.client.createApiKey({ project: 'demo', name: 'inf', scopes: [Scope.SCOPE_INFERENCE], endpointSlug: '', expireTime: undefined });
    const scoped = await call('GET', '/demo/v1/management/api-keys', inference.secret);
    assert.equal(scoped.status, 403);
    assert.equal(scoped.json.error?.code, 'scope_insufficient');
    await t.client.createProject({ slug: 'someone-else', name: '' });
    for (const project of ['someone-else', 'nobody', 'DEMO']) {
      const foreign = await call('GET', `/${project}/v1/management/api-keys`, t.demoKey);
      assert.equal(foreign.status, 403, project);
      assert.equal(foreign.json.error?.code, 'cross_project_access');
    }
  });

  it('creates, lists, gets, rotates and revokes keys', async () => {
    const demo = (await t.client.listProjects({})).projects.find((p) => p.slug === 'demo');
    assert.ok(demo);
    const expires = Math.floor(Date.now() / 1000) + 3600;
    const created = await call('POST', `/${demo.id}/v1/management/api-keys`, t.demoKey, {
      name: 'ci',
      scopes: ['inference', 'management'],
      endpoint: 'chat',
      expires_at: expires,
    });
    assert.equal(created.status, 201);
    assert.equal(created.headers.get('cache-control'), 'no-store');
    assert.deepEqual(Object.keys(created.json).sort(), [...KEY_FIELDS, 'key'].sort());
    assert.equal(created.json['object'], 'api_key');
    assert.equal(created.json['endpoint'], 'chat');
    assert.equal(created.json['expires_at'], expires);
    assert.equal(created.json['revoked'], false);
    assert.equal(created.json['last_used_at'], null);
    assert.deepEqual(created.json['scopes'], ['inference', 'management']);
    const secret = String(created.json['key']);
    const id = String(created.json['id']);
    assert.ok(secret.startsWith(String(created.json['prefix'])));

    // The new key manages the project too (it holds the scope).
    const list = await call('GET', '/demo/v1/management/api-keys?limit=100', secret);
    assert.equal(list.status, 200);
    assert.equal(list.json['object'], 'list');
    assert.equal(list.json['has_more'], false);
    const data = list.json['data'] as Array<Record<string, unknown>>;
    assert.ok(data.some((k) => k['id'] === id));
    for (const k of data) assert.deepEqual(Object.keys(k).sort(), KEY_FIELDS);
    assert.ok(data.some((k) => typeof k['last_used_at'] === 'number'), 'the demo key has been used');

    const got = await call('GET', `/demo/v1/management/api-keys/${id}`, t.demoKey);
    assert.equal(got.json['id'], id);
    assert.equal(got.json['key'], undefined, 'the secret is shown once only');

    const rotated = await call('POST', `/demo/v1/management/api-keys/${id}/rotate`, t.demoKey, { grace_seconds: 120 });
    assert.equal(rotated.status, 201);
    const previous = rotated.json['previous_key'] as Record<string, unknown>;
    assert.equal(previous['id'], id);
    assert.ok(Math.abs(Number(previous['grace_expires_at']) - (Date.now() / 1000 + 120)) < 30);
    const newSecret = String(rotated.json['key']);
    assert.notEqual(newSecret, secret);
    assert.equal((await call('GET', `/demo/v1/management/api-keys/${id}`, secret)).status, 200, 'old key valid in grace');
    assert.equal((await call('GET', `/demo/v1/management/api-keys/${id}`, newSecret)).status, 200);

    const revoked = await call('DELETE', `/demo/v1/management/api-keys/${String(rotated.json['id'])}`, t.demoKey);
    assert.equal(revoked.status, 200);
    assert.equal(revoked.json['revoked'], true);
    assert.equal((await call('GET', '/demo/v1/management/api-keys', newSecret)).status, 401);
  });

  it('pages with limit and after', async () => {
    for (let i = 0; i < 3; i++) await call('POST', '/demo/v1/management/api-keys', t.demoKey, { name: `page-${i}` });
    const seen: string[] = [];
    let after = '';
    for (;;) {
      const page = await call('GET', `/demo/v1/management/api-keys?limit=2${after ? `&after=${after}` : ''}`, t.demoKey);
      assert.equal(page.status, 200);
      const data = page.json['data'] as Array<{ id: string }>;
      assert.ok(data.length <= 2);
      seen.push(...data.map((k) => k.id));
      if (!page.json['has_more']) break;
      after = String(page.json['last_id']);
    }
    const all = await call('GET', '/demo/v1/management/api-keys?limit=100', t.demoKey);
    assert.deepEqual(seen, (all.json['data'] as Array<{ id: string }>).map((k) => k.id));
    for (const limit of ['0', '101', 'x', '-1', '1.5']) {
      const bad = await call('GET', `/demo/v1/management/api-keys?limit=${limit}`, t.demoKey);
      assert.equal(bad.status, 400, limit);
      assert.equal(bad.json.error?.param, 'limit');
    }
  });

  it('validates bodies and ids', async () => {
    const cases: Array<[unknown, string | null]> = [
      [{}, 'name'],
      [{ name: '' }, 'name'],
      [{ name: 'x', scopes: ['admin'] }, 'scopes.0'],
      [{ name: 'x', scopes: [] }, 'scopes'],
      [{ name: 'x', expires_at: 'tomorrow' }, 'expires_at'],
      [{ name: 'x', surprise: true }, 'surprise'],
      [{ name: 'x', expires_at: 1000 }, 'expires_at'],
    ];
    for (const [body, param] of cases) {
      const res = await call('POST', '/demo/v1/management/api-keys', t.demoKey, body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.json.error?.param, param, JSON.stringify(body));
    }
    const unknownEndpoint = await call('POST', '/demo/v1/management/api-keys', t.demoKey, { name: 'x', endpoint: 'nope' });
    assert.equal(unknownEndpoint.status, 404);
    assert.equal(unknownEndpoint.json.error?.code, 'endpoint_not_found');
    const missing = await call('GET', '/demo/v1/management/api-keys/key_000', t.demoKey);
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error?.code, 'api_key_not_found');
    // Another project's key id is just as invisible.
    const other = await t.client.createApiKey({ project: 'someone-else', name: 'x', scopes: [], endpointSlug: '', expireTime: undefined });
    for (const [method, path] of [
      ['GET', `/demo/v1/management/api-keys/${other.apiKey?.id}`],
      ['DELETE', `/demo/v1/management/api-keys/${other.apiKey?.id}`],
      ['POST', `/demo/v1/management/api-keys/${other.apiKey?.id}/rotate`],
    ] as const) {
      const res = await call(method, path, t.demoKey);
      assert.equal(res.status, 404, `${method} ${path}`);
    }
    const stillValid = await t.client.getApiKey({ project: 'someone-else', keyId: other.apiKey?.id ?? '' });
    assert.equal(stillValid.apiKey?.revoked, false);
  });
});
