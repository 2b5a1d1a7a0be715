/**
 * The auth service over real gRPC (port 0) on both stores: errors arrive at a client as
 * AppErrors with the right kind and code (x-error-code trailer), the service token is enforced,
 * and nothing the process logs contains key material.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, Metadata, credentials, status, type ServiceError } from '@grpc/grpc-js';
import { Timestamp } from '../../gen/google/protobuf/timestamp.js';
import { CreateApiKeyRequest, Scope } from '../../gen/xerotier/auth/v1/auth_service.js';
import { isAppError, type AppError, type ErrorKind } from '../../lib/errors/app-error.js';
import { callOptions, createAppClient } from '../../lib/grpc/client.js';
import { AuthServiceDefinition } from '../../gen/xerotier/auth/v1/auth_service.js';
import { KEY_MATERIAL, STORE_KINDS } from '../support/auth-stores.js';
import { TEST_SERVICE_TOKEN, startTestAuth, type TestAuth } from './helpers.js';

/**
 * CreateApiKey with `expire_time.seconds` set as given, sent as raw bytes: a client can put any
 * int64 there, including values no JavaScript Date can hold. Resolves to the call's error.
 */
function createWithRawExpiry(address: string, seconds: number): Promise<ServiceError> {
  const writer = CreateApiKeyRequest.encode({ project: 'demo', name: 'far', scopes: [], endpointSlug: '', expireTime: undefined });
  Timestamp.encode({ seconds, nanos: 0 }, writer.uint32((5 << 3) | 2).fork()).join();
  const client = new Client(address, credentials.createInsecure());
  const metadata = new Metadata();
  metadata.set('x-service-token', TEST_SERVICE_TOKEN);
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      '/xerotier.auth.v1.AuthService/CreateApiKey',
      (bytes: Buffer) => bytes,
      (bytes: Buffer) => bytes,
      Buffer.from(writer.finish()),
      metadata,
      (err) => {
        client.close();
        if (err) resolve(err);
        else reject(new Error('the key was created'));
      },
    );
  });
}

async function appError(promise: Promise<unknown>, kind: ErrorKind, code: string): Promise<AppError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isAppError(err), `expected AppError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${kind}/${code}`);
}

for (const kind of STORE_KINDS) {
  describe(`auth service over gRPC (${kind})`, () => {
    let t: TestAuth;
    before(async () => {
      t = await startTestAuth(kind);
    });
    after(async () => {
      await t?.stop();
    });

    it('authenticates the seeded demo key', async () => {
      const res = await t.client.authenticate(
        { apiKey: t.demoKey, project: 'demo', endpoint: 'chat', requiredScope: Scope.SCOPE_INFERENCE },
        callOptions('req-ok'),
      );
      assert.equal(res.principal?.project?.slug, 'demo');
      assert.equal(res.principal?.endpoint?.model, 'smollm2-135m-instruct');
      assert.ok(res.principal?.project?.createTime instanceof Date);
      assert.deepEqual(res.principal?.scopes, [Scope.SCOPE_INFERENCE, Scope.SCOPE_MANAGEMENT]);
    });

    it('maps every refusal to an AppError with the right code', async () => {
      const { client } = t;
      const auth = (apiKey: string, project: string, endpoint: string, requiredScope = Scope.SCOPE_INFERENCE) =>
        client.authenticate({ apiKey, project, endpoint, requiredScope }, callOptions('req-err'));
      const other = await client.createProject({ slug: 'other-tenant', name: '' });
      await client.createEndpoint({ project: 'demo', slug: 'paused', tier: 'cpu_standard', model: 'm', hardwarePool: '', contextWindow: 0 });
      await client.setEndpointActive({ project: 'demo', endpoint: 'paused', active: false });
      const inferenceOnly = await client.createApiKey({ project: 'demo', name: 'inf', scopes: [Scope.SCOPE_INFERENCE], endpointSlug: '', expireTime: undefined });
      const bound = await client.createApiKey({ project: 'demo', name: 'bound', scopes: [], endpointSlug: 'chat', expireTime: undefined });

      const e401 = await appError(auth('xero_demo_nope', 'demo', 'chat'), 'unauthenticated', 'invalid_api_key');
      assert.equal(e401.message, 'Invalid API key.');
      await appError(auth('', 'demo', 'chat'), 'unauthenticated', 'invalid_api_key');
      await appError(auth(t.demoKey, 'other-tenant', 'chat'), 'permission_denied', 'cross_project_access');
      await appError(auth(t.demoKey, other.project?.id ?? '', 'chat'), 'permission_denied', 'cross_project_access');
      await appError(auth(t.demoKey, 'ghost', 'chat'), 'permission_denied', 'cross_project_access');
      await appError(auth(t.demoKey, 'DEMO', 'chat'), 'permission_denied', 'cross_project_access');
      await appError(auth(inferenceOnly.secret, 'demo', '', Scope.SCOPE_MANAGEMENT), 'permission_denied', 'scope_insufficient');
      await appError(auth(bound.secret, 'demo', 'paused'), 'permission_denied', 'endpoint_mismatch');
      await appError(auth(t.demoKey, 'demo', 'nope'), 'not_found', 'endpoint_not_found');
      const inactive = await appError(auth(t.demoKey, 'demo', 'paused'), 'unavailable', 'endpoint_inactive');
      assert.equal(inactive.retryAfterSeconds, 30);
      await appError(client.createProject({ slug: 'Bad_Slug', name: '' }), 'invalid_request', 'invalid_request');
      await appError(client.createProject({ slug: 'demo', name: '' }), 'invalid_request', 'project_exists');
      await appError(client.listEndpoints({ project: 'ghost' }), 'not_found', 'project_not_found');
      await appError(client.getApiKey({ project: 'demo', keyId: 'key_nope' }), 'not_found', 'api_key_not_found');

      await client.revokeApiKey({ project: 'demo', keyId: inferenceOnly.apiKey?.id ?? '' });
      await appError(auth(inferenceOnly.secret, 'demo', 'chat'), 'unauthenticated', 'invalid_api_key');
    });

    it('rotates over the wire: both keys work during the grace period', async () => {
      const { client } = t;
      const created = await client.createApiKey({ project: 'demo', name: 'rot', scopes: [], endpointSlug: '', expireTime: undefined });
      const rotated = await client.rotateApiKey({ project: 'demo', keyId: created.apiKey?.id ?? '', graceSeconds: 0 });
      const grace = rotated.previousApiKey?.graceExpireTime?.getTime() ?? 0;
      assert.ok(Math.abs(grace - (Date.now() + 86_400_000)) < 60_000, 'default grace = AUTH_ROTATION_GRACE_SECONDS');
      for (const apiKey of [created.secret, rotated.secret]) {
        await client.authenticate({ apiKey, project: 'demo', endpoint: 'chat', requiredScope: Scope.SCOPE_INFERENCE });
      }
      const page = await client.listApiKeys({ project: 'demo', pageSize: 100, after: '' });
      assert.ok(page.apiKeys.some((k) => k.id === rotated.apiKey?.id && k.rotatedFromKeyId === created.apiKey?.id));
    });

    it('acts for an actor key: a bound management key neither escapes its endpoint nor reaches other keys', async () => {
      const { client } = t;
      await client.createEndpoint({ project: 'demo', slug: 'side', tier: 'cpu_standard', model: 'm', hardwarePool: '', contextWindow: 0 });
      const both = [Scope.SCOPE_INFERENCE, Scope.SCOPE_MANAGEMENT];
      const actor = await client.createApiKey({ project: 'demo', name: 'bound', scopes: both, endpointSlug: 'chat', expireTime: undefined });
      const unbound = await client.createApiKey({ project: 'demo', name: 'free', scopes: both, endpointSlug: '', expireTime: undefined });
      const actorKeyId = actor.apiKey?.id ?? '';

      const escape = await appError(
        client.createApiKey({ project: 'demo', name: 'x', scopes: both, endpointSlug: 'side', expireTime: undefined, actorKeyId }),
        'permission_denied',
        'endpoint_binding_exceeds_caller',
      );
      assert.equal(escape.param, 'endpoint');
      const minted = await client.createApiKey({ project: 'demo', name: 'x', scopes: both, endpointSlug: '', expireTime: undefined, actorKeyId });
      assert.equal(minted.apiKey?.endpointSlug, 'chat');
      await appError(
        client.authenticate({ apiKey: minted.secret, project: 'demo', endpoint: 'side', requiredScope: Scope.SCOPE_INFERENCE }),
        'permission_denied',
        'endpoint_mismatch',
      );
      await appError(client.rotateApiKey({ project: 'demo', keyId: unbound.apiKey?.id ?? '', graceSeconds: 0, actorKeyId }), 'not_found', 'api_key_not_found');
      const listed = await client.listApiKeys({ project: 'demo', pageSize: 100, after: '', actorKeyId });
      assert.deepEqual(listed.apiKeys.map((k) => k.endpointSlug).filter((e) => e !== 'chat'), []);
      assert.ok(listed.apiKeys.some((k) => k.id === minted.apiKey?.id));
      // The operator (no actor) still sees and keeps every key.
      assert.equal((await client.getApiKey({ project: 'demo', keyId: unbound.apiKey?.id ?? '' })).apiKey?.revoked, false);
    });

    it('refuses an expiry beyond the Timestamp range as INVALID_ARGUMENT naming expires_at, not an internal error', async () => {
      for (const seconds of [1e15, 253_402_300_800]) {
        const err = await createWithRawExpiry(t.address, seconds);
        assert.equal(err.code, status.INVALID_ARGUMENT, `${seconds}: ${err.details}`);
        assert.equal(err.metadata.get('x-error-param')[0], 'expires_at');
        assert.match(err.details, /^expires_at /);
      }
    });

    it('refuses callers without the service credential', async () => {
      const anonymous = createAppClient(AuthServiceDefinition, t.channel, { address: t.address, target: 'auth service' });
      await appError(anonymous.listProjects({}), 'unauthenticated', 'invalid_api_key');
    });

    it('logs no key material', () => {
      assert.ok(t.logs.lines.some((l) => l.includes('rpc failed')), 'failures were logged');
      assert.deepEqual(t.logs.text().match(KEY_MATERIAL) ?? [], []);
    });
  });
}
