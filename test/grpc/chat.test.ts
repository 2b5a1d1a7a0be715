/**
 * The gateway's gRPC front door through the typed client against the whole platform (real gRPC
 * between every process): streaming and collected completions, ListModels, the same API keys and
 * tenancy rules as HTTP, refusals by field, rate-limit figures in metadata, health and reflection,
 * and 32 concurrent streams.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createChannel, createClient, Status } from 'nice-grpc';
import { HealthDefinition } from 'nice-grpc-server-health';
import { ServerReflectionService } from 'nice-grpc-server-reflection';
import reflectionPb from 'nice-grpc-server-reflection/lib/proto/grpc/reflection/v1/reflection_pb.js';
import { AuthServiceDefinition, Scope } from '../../gen/xerotier/auth/v1/auth_service.js';
import { callOptions, createAppClient, createGrpcChannel } from '../../lib/grpc/client.js';
import { FinishReason, Role, type ChatClient, type CreateChatCompletionResponse } from '../../client/chat-client.js';
import { startPlatform, type Platform } from '../helpers/platform.js';
import { unthrottledTiers } from '../helpers/tiers.js';
import { ask, clientFor, failure } from './helpers.js';

async function* once<T>(value: T): AsyncGenerator<T> {
  yield value;
}

const AUTH_CACHE_TTL_MS = 300;

describe('gRPC front door: chat', () => {
  let platform: Platform;
  let acmeKey: string;
  let admin: ReturnType<typeof createAppClient<typeof AuthServiceDefinition>>;
  before(async () => {
    const tiers = unthrottledTiers();
    platform = await startPlatform({
      gatewayEnv: { TIERS_FILE: tiers, GATEWAY_AUTH_CACHE_TTL_MS: String(AUTH_CACHE_TTL_MS) },
      quotaEnv: { TIERS_FILE: tiers },
      workerEnv: { INFERENCE_CAPACITY: '32', INFERENCE_QUEUE_CAPACITY: '0' },
    });
    admin = createAppClient(AuthServiceDefinition, createGrpcChannel(`127.0.0.1:${platform.authPort}`), { address: '', target: 'auth' });
    await admin.createProject({ slug: 'acme', name: 'Acme' }, callOptions('t'));
    await admin.createEndpoint(
      { project: 'acme', slug: 'chat', tier: 'cpu_standard', model: 'simulator', hardwarePool: 'cpu', contextWindow: 2048 },
      callOptions('t'),
    );
    acmeKey = (await admin.createApiKey({ project: 'acme', name: 'acme', scopes: [Scope.SCOPE_INFERENCE], endpointSlug: '' }, callOptions('t'))).secret;
  });
  after(() => platform.stop());

  it('streams a start, content deltas and one final with usage; metadata carries the request id and rate limits', async () => {
    const chat = clientFor(platform);
    try {
      let metadata: Record<string, string> = {};
      const events: CreateChatCompletionResponse[] = [];
      for await (const e of chat.createChatCompletion(ask({ maxCompletionTokens: 6 }), { onMetadata: (m) => (metadata = m) })) events.push(e);
      const start = events[0]?.start;
      assert.ok(start, 'the first event is the start');
      assert.match(start.id, /^chatcmpl-/);
      assert.equal(start.model, 'simulator');
      assert.ok(start.workerId.length > 0);
      const deltas = events.slice(1, -1);
      assert.ok(deltas.length > 0 && deltas.every((e) => e.delta !== undefined), 'deltas between start and final');
      const final = events.at(-1)?.final;
      assert.ok(final, 'the last event is the final');
      assert.equal(final.finishReason, FinishReason.FINISH_REASON_LENGTH);
      assert.equal(final.usage?.completionTokens, 6);
      assert.equal(final.usage?.totalTokens, (final.usage?.promptTokens ?? 0) + 6);
      assert.match(metadata['x-request-id'] ?? '', /^req_[0-9a-f]{24}$/);
      assert.equal(start.id, `chatcmpl-${metadata['x-request-id']?.slice(4)}`);
      assert.ok(Number(metadata['x-ratelimit-limit-requests']) > 0, 'rate-limit figures as over HTTP');
      assert.ok(Number(metadata['x-ratelimit-remaining-tokens']) > 0);
    } finally {
      chat.close();
    }
  });

  it('collects a completion like a unary call, with the same text as the HTTP API for the same request', async () => {
    const chat = clientFor(platform);
    try {
      const done = await chat.complete(ask({ maxCompletionTokens: 8, temperature: 0, seed: 7 }));
      const http = await fetch(`${platform.baseUrl()}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${platform.demoKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 8, temperature: 0, seed: 7 }),
      }).then((r) => r.json() as Promise<{ choices: Array<{ message: { content: string } }>; usage: { completion_tokens: number } }>);
      assert.ok(done.text.length > 0);
      assert.equal(done.text, http.choices[0]?.message.content);
      assert.equal(done.usage.completionTokens, http.usage.completion_tokens);
    } finally {
      chat.close();
    }
  });

  it('lists the endpoint model', async () => {
    const chat = clientFor(platform);
    try {
      const { models } = await chat.listModels({ project: 'demo', endpoint: 'chat' });
      assert.deepEqual(models.map((m) => [m.id, m.ownedBy]), [['simulator', 'demo']]);
    } finally {
      chat.close();
    }
  });

  it('refuses a missing or wrong key with UNAUTHENTICATED and a key of another project with PERMISSION_DENIED', async () => {
    const wrong = clientFor(platform, 'xero_demo_notarealkey');
    const acme = clientFor(platform, acmeKey);
    try {
      const bad = await failure(wrong.complete(ask()), Status.UNAUTHENTICATED, 'invalid_api_key');
      assert.equal(bad.info['type'], 'authentication_error');
      assert.equal(bad.info['http_status'], '401');
      await failure(acme.complete(ask()), Status.PERMISSION_DENIED, 'cross_project_access');
      await failure(acme.listModels({ project: 'demo', endpoint: 'chat' }), Status.PERMISSION_DENIED, 'cross_project_access');
      // The same key on its own project works: the refusals above are about tenancy, not the key.
      assert.ok((await acme.complete(ask({ project: 'acme' }))).text.length > 0);
      await failure(acme.complete(ask({ project: 'acme', endpoint: 'nope' })), Status.NOT_FOUND, 'endpoint_not_found');
    } finally {
      wrong.close();
      acme.close();
    }
  });

  it('applies scopes, endpoint binding and revocation (within the auth cache bound) like HTTP', async () => {
    const create = (name: string, scopes: Scope[], endpointSlug = '') =>
      admin.createApiKey({ project: 'demo', name, scopes, endpointSlug }, callOptions('t'));
    await admin.createEndpoint(
      { project: 'demo', slug: 'other', tier: 'cpu_standard', model: 'simulator', hardwarePool: 'cpu', contextWindow: 2048 },
      callOptions('t'),
    );
    const management = await create('mgmt', [Scope.SCOPE_MANAGEMENT]);
    const bound = await create('bound', [Scope.SCOPE_INFERENCE], 'other');
    const revoked = await create('revoked', [Scope.SCOPE_INFERENCE]);
    const clients = [management, bound, revoked].map((k) => clientFor(platform, k.secret));
    const [mgmtClient, boundClient, revokedClient] = clients as [ChatClient, ChatClient, ChatClient];
    try {
      await failure(mgmtClient.complete(ask()), Status.PERMISSION_DENIED, 'scope_insufficient');
      await failure(boundClient.complete(ask()), Status.PERMISSION_DENIED, 'endpoint_mismatch');
      assert.ok((await boundClient.complete(ask({ endpoint: 'other' }))).text.length > 0, 'the bound key works on its endpoint');
      assert.ok((await revokedClient.complete(ask())).text.length > 0, 'works before revocation');
      await admin.revokeApiKey({ project: 'demo', keyId: revoked.apiKey!.id }, callOptions('t'));
      await new Promise((r) => setTimeout(r, AUTH_CACHE_TTL_MS + 50));
      await failure(revokedClient.complete(ask()), Status.UNAUTHENTICATED, 'invalid_api_key');
    } finally {
      for (const c of clients) c.close();
    }
  });

  it('refuses bad parameters with INVALID_ARGUMENT naming the field', async () => {
    const chat = clientFor(platform);
    try {
      const role = await failure(chat.complete(ask({ messages: [{ role: Role.ROLE_UNSPECIFIED, content: 'x' }] })), Status.INVALID_ARGUMENT, 'invalid_request');
      assert.equal(role.info['param'], 'messages[0].role');
      const temp = await failure(chat.complete(ask({ temperature: 3 })), Status.INVALID_ARGUMENT, 'invalid_request');
      assert.equal(temp.info['param'], 'temperature');
      const stop = await failure(chat.complete(ask({ stop: ['a', 'b', 'c', 'd', 'e'] })), Status.INVALID_ARGUMENT, 'invalid_request');
      assert.equal(stop.info['param'], 'stop');
      await failure(chat.complete(ask({ messages: [] })), Status.INVALID_ARGUMENT, 'invalid_request');
      const long = await failure(
        chat.complete(ask({ messages: [{ role: 'user', content: 'x'.repeat(40_000) }] })),
        Status.INVALID_ARGUMENT,
        'context_length_exceeded',
      );
      assert.equal(long.info['param'], 'messages');
    } finally {
      chat.close();
    }
  });

  it('serves 32 concurrent streams, each complete', async () => {
    const chat = clientFor(platform);
    try {
      const started = performance.now();
      const results = await Promise.all(Array.from({ length: 32 }, () => chat.complete(ask({ maxCompletionTokens: 10 }))));
      console.log(`# 32 concurrent gRPC streams (10 tokens each) in ${(performance.now() - started).toFixed(0)} ms`);
      assert.equal(results.length, 32);
      assert.ok(results.every((r) => r.usage.completionTokens === 10 && r.finishReason === FinishReason.FINISH_REASON_LENGTH));
      assert.equal(new Set(results.map((r) => r.id)).size, 32, 'every stream has its own completion id');
    } finally {
      chat.close();
    }
  });

  it('answers health checks and lists ChatService through server reflection', async () => {
    const channel = createChannel(`127.0.0.1:${platform.gateway.grpcPort}`);
    try {
      const health = createClient(HealthDefinition, channel);
      const status = await health.check({ service: 'xerotier.gateway.v1.ChatService' });
      assert.equal(status.status, 1 /* SERVING */);
      const reflection = createClient(ServerReflectionService, channel);
      const request = new reflectionPb.ServerReflectionRequest();
      request.setListServices('');
      const names: string[] = [];
      for await (const response of reflection.serverReflectionInfo(once(request))) {
        for (const s of response.getListServicesResponse()?.getServiceList() ?? []) names.push(s.getName());
      }
      assert.ok(names.includes('xerotier.gateway.v1.ChatService'), names.join(','));
    } finally {
      channel.close();
    }
  });
});
