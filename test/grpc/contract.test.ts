/**
 * The public contract of xerotier.gateway.v1 as any gRPC client sees it: the .proto files loaded
 * at run time with @grpc/proto-loader and called with plain @grpc/grpc-js (no generated
 * TypeScript, no helper client). Field names and enum names are those of the .proto; errors carry
 * the status, the `x-error-code` trailer and `grpc-status-details-bin`; a grpc-js deadline is
 * honoured by the gateway.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { decodeRichStatus } from '../../lib/errors/rich-status.js';
import { createSimulatorEngine } from '../../services/inference/src/engines/simulator/simulator-engine.js';
import { SIMULATOR_DEFAULTS, startPlatform, waitFor, type Platform } from '../helpers/platform.js';

const PROTO_DIR = path.join(import.meta.dirname, '..', '..', 'proto');

type Json = Record<string, unknown>;
type StreamCall = grpc.ClientReadableStream<Json>;
interface ChatServiceClient extends grpc.Client {
  CreateChatCompletion(request: Json, metadata: grpc.Metadata, options?: grpc.CallOptions): StreamCall;
  ListModels(request: Json, metadata: grpc.Metadata, callback: (err: grpc.ServiceError | null, response?: Json) => void): void;
}

function loadChatService(): new (address: string, credentials: grpc.ChannelCredentials) => ChatServiceClient {
  const definition = protoLoader.loadSync('xerotier/gateway/v1/chat_service.proto', {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    enums: String,
    longs: Number,
    defaults: false,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    xerotier: { gateway: { v1: { ChatService: new (address: string, credentials: grpc.ChannelCredentials) => ChatServiceClient } } };
  };
  return loaded.xerotier.gateway.v1.ChatService;
}

function collect(call: StreamCall): Promise<{ events: Json[]; error: grpc.ServiceError | undefined }> {
  return new Promise((resolve) => {
    const events: Json[] = [];
    call.on('data', (e: Json) => events.push(e));
    call.on('error', (error: grpc.ServiceError) => resolve({ events, error }));
    call.on('end', () => resolve({ events, error: undefined }));
  });
}

describe('xerotier.gateway.v1 contract (proto-loader + grpc-js)', () => {
  let platform: Platform;
  let client: ChatServiceClient;
  const auth = (key: string): grpc.Metadata => {
    const m = new grpc.Metadata();
    m.set('authorization', `Bearer ${key}`);
    return m;
  };
  const request = (extra: Json = {}): Json => ({
    project: 'demo',
    endpoint: 'chat',
    messages: [{ role: 'ROLE_USER', content: 'hi' }],
    max_completion_tokens: 4,
    ...extra,
  });

  before(async () => {
    const engine = createSimulatorEngine({ ...SIMULATOR_DEFAULTS, responseTokens: 4 });
    platform = await startPlatform({ engines: [engine] });
    const ChatService = loadChatService();
    client = new ChatService(`127.0.0.1:${platform.gateway.grpcPort}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client.close();
    await platform.stop();
  });

  it('CreateChatCompletion streams start, deltas and final with the names of the .proto', async () => {
    const { events, error } = await collect(client.CreateChatCompletion(request(), auth(platform.demoKey)));
    assert.equal(error, undefined);
    assert.equal(events[0]?.['event'], 'start');
    const start = events[0]?.['start'] as Json;
    assert.match(String(start['id']), /^chatcmpl-/);
    assert.equal(typeof start['worker_id'], 'string');
    assert.equal(typeof start['system_fingerprint'], 'string');
    assert.ok((start['create_time'] as Json)['seconds'] !== undefined);
    const deltas = events.slice(1, -1);
    assert.ok(deltas.length >= 1);
    assert.ok(deltas.every((e) => e['event'] === 'delta' && typeof (e['delta'] as Json)['content'] === 'string'));
    // Four tokens (the simulator's words; ready together, they may share a delta).
    assert.equal(deltas.map((e) => String((e['delta'] as Json)['content'])).join('').trim().split(/\s+/).length, 4);
    const final = events.at(-1)?.['final'] as Json;
    assert.equal(final['finish_reason'], 'FINISH_REASON_LENGTH');
    assert.deepEqual(final['usage'], { prompt_tokens: (final['usage'] as Json)['prompt_tokens'], completion_tokens: 4, total_tokens: Number((final['usage'] as Json)['prompt_tokens']) + 4 });
  });

  it('ListModels answers with the endpoint model', async () => {
    const response = await new Promise<Json>((resolve, reject) =>
      client.ListModels({ project: 'demo', endpoint: 'chat' }, auth(platform.demoKey), (err, r) => (err ? reject(err) : resolve(r ?? {}))),
    );
    assert.deepEqual((response['models'] as Json[]).map((m) => [m['id'], m['owned_by']]), [['simulator', 'demo']]);
  });

  it('an error is a status with the x-error-code trailer and a google.rpc.Status in grpc-status-details-bin', async () => {
    const { events, error } = await collect(client.CreateChatCompletion(request(), auth('xero_demo_wrong')));
    assert.equal(events.length, 0);
    assert.equal(error?.code, grpc.status.UNAUTHENTICATED);
    assert.deepEqual(error?.metadata.get('x-error-code'), ['invalid_api_key']);
    const details = error?.metadata.get('grpc-status-details-bin')[0];
    assert.ok(details instanceof Buffer, 'details trailer present');
    const status = decodeRichStatus(details);
    assert.equal(status.code, grpc.status.UNAUTHENTICATED);
    assert.equal(status.message, error?.details);
    assert.equal(status.errorInfo?.reason, 'invalid_api_key');
    assert.equal(status.errorInfo?.domain, 'gateway.xerotier');
  });

  it('a grpc-js deadline is honoured: DEADLINE_EXCEEDED at the deadline and the worker slot freed', async () => {
    const slow = createSimulatorEngine({ ...SIMULATOR_DEFAULTS, timeToFirstTokenMs: 10_000 });
    const slowPlatform = await startPlatform({ engines: [slow] });
    const ChatService = loadChatService();
    const slowClient = new ChatService(`127.0.0.1:${slowPlatform.gateway.grpcPort}`, grpc.credentials.createInsecure());
    try {
      const started = performance.now();
      const { error } = await collect(slowClient.CreateChatCompletion(request(), auth(slowPlatform.demoKey), { deadline: Date.now() + 500 }));
      const ms = performance.now() - started;
      console.log(`# grpc-js deadline 500 ms: DEADLINE_EXCEEDED after ${ms.toFixed(0)} ms`);
      assert.equal(error?.code, grpc.status.DEADLINE_EXCEEDED);
      assert.ok(ms < 3000, `${ms} ms`);
      await waitFor(() => slowPlatform.workers[0]!.service.status().inFlightCount === 0, 3000, 'worker slot released');
    } finally {
      slowClient.close();
      await slowPlatform.stop();
    }
  });
});
