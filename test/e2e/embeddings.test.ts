/**
 * Embeddings through the whole stack (official openai SDK → gateway → gRPC → inference →
 * node-llama-cpp's embedding context) on the tiny generated model: batches, both encodings,
 * both URL styles, refusals by name, endpoint kinds, quota charged to the worker's count.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI, { BadRequestError } from 'openai';
import { pino } from 'pino';
import { AuthServiceDefinition, Scope } from '../../gen/xerotier/auth/v1/auth_service.js';
import { QuotaServiceDefinition } from '../../gen/xerotier/quota/v1/quota_service.js';
import { callOptions, createAppClient, createGrpcChannel } from '../../lib/grpc/client.js';
import { createLlamaCppEngine } from '../../services/inference/src/engines/llama-cpp/llama-cpp-engine.js';
import { writeTinyGguf } from '../../services/inference/src/engines/llama-cpp/tiny-gguf.js';
import { createSchemaValidator } from '../helpers/openai-schemas.js';
import { startPlatform, type Platform } from '../helpers/platform.js';
import { rawRequest } from '../helpers/raw-request.js';
import { cpuStandardTiers } from '../helpers/tiers.js';

const validate = createSchemaValidator();
const dot = (a: number[], b: number[]): number => a.reduce((sum, v, i) => sum + v * (b[i] ?? 0), 0);

describe('embeddings through the gateway (llama.cpp, tiny generated model)', () => {
  let platform: Platform;
  let client: OpenAI;
  let url: string;
  const post = (target: string, body: unknown) =>
    fetch(target, {
      method: 'POST',
      headers: { authorization: `Bearer ${platform.demoKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  before(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tiny-embed-'));
    const modelPath = path.join(dir, 'tiny.gguf');
    await writeTinyGguf(modelPath);
    const engine = createLlamaCppEngine(
      { modelPath, gpu: 'cpu', threads: 1, parallel: 1, modelName: 'xerotier-tiny-successor' },
      { logger: pino({ level: 'silent' }) },
    );
    const tiers = cpuStandardTiers({ requestsPerMinute: 1000, tokensPerMinute: 10_000_000 });
    platform = await startPlatform({ engines: [engine], gatewayEnv: { TIERS_FILE: tiers }, quotaEnv: { TIERS_FILE: tiers } });
    url = platform.baseUrl('demo', 'embeddings');
    client = new OpenAI({ baseURL: url, apiKey: platform.demoKey, maxRetries: 0 });
  });
  after(async () => platform?.stop());

  it('the official SDK embeds a batch (its default base64 transfer): one unit vector per input, in order', async () => {
    const r = await client.embeddings.create({ model: 'smollm2-135m-instruct', input: ['abc', 'xyz', 'abc'] });
    assert.equal(r.object, 'list');
    assert.equal(r.model, 'xerotier-tiny-successor', 'the response names the endpoint model (the id its worker advertises)');
    assert.deepEqual(r.data.map((d) => d.index), [0, 1, 2]);
    const [a, x, a2] = r.data.map((d) => d.embedding) as [number[], number[], number[]];
    assert.ok(a.length > 0);
    for (const v of [a, x]) assert.ok(Math.abs(dot(v, v) - 1) < 1e-4, 'unit length');
    assert.deepEqual(a2, a);
    assert.notDeepEqual(x, a);
    assert.ok(r.usage.prompt_tokens >= 9, `three 3-character inputs took ${r.usage.prompt_tokens} tokens`);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens);
  });

  it('float and base64 encodings carry the same vectors; the float body validates against the OpenAI schema', async () => {
    const res = await post(`${url}/embeddings`, { model: 'm', input: 'abc', encoding_format: 'float' });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { data: Array<{ embedding: number[] }> };
    validate('CreateEmbeddingResponse', body);
    const b64 = await post(`${url}/embeddings`, { model: 'm', input: 'abc', encoding_format: 'base64' });
    const encoded = ((await b64.json()) as { data: Array<{ embedding: string }> }).data[0]!.embedding;
    assert.equal(typeof encoded, 'string');
    const bytes = Buffer.from(encoded, 'base64');
    const decoded = Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
    assert.deepEqual(decoded, body.data[0]!.embedding);
  });

  it('answers on the DNS-based URL too', async () => {
    const res = await rawRequest(platform.gateway.port, 'embeddings.demo.api.localhost', '/v1/embeddings', platform.demoKey, {
      model: 'm',
      input: ['hello'],
      encoding_format: 'float',
    });
    assert.equal(res.status, 200, res.body);
    validate('CreateEmbeddingResponse', JSON.parse(res.body));
  });

  it('refuses by name what it cannot honour: other dimensions, token arrays, empty input', async () => {
    const size = (await client.embeddings.create({ model: 'm', input: 'a', encoding_format: 'float' })).data[0]!.embedding.length;
    const same = await client.embeddings.create({ model: 'm', input: 'a', dimensions: size, encoding_format: 'float' });
    assert.equal(same.data[0]!.embedding.length, size, 'the model size itself is honoured');
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ input: 'a', dimensions: 3 }, 'dimensions'],
      [{ input: [1, 2, 3] }, 'input'],
      [{ input: [[1, 2]] }, 'input'],
      [{ input: '' }, 'input'],
      [{ input: [] }, 'input'],
      [{ input: 'a', encoding_format: 'int8' }, 'encoding_format'],
    ];
    for (const [body, param] of cases) {
      const res = await post(`${url}/embeddings`, { model: 'm', ...body });
      const error = (await res.json()) as { error: { param: string; type: string } };
      assert.equal(res.status, 400, JSON.stringify(body));
      validate('ErrorResponse', error);
      assert.equal(error.error.param, param, JSON.stringify(body));
      assert.equal(error.error.type, 'invalid_request_error');
    }
    await assert.rejects(client.embeddings.create({ model: 'm', input: 'a', dimensions: 3 }), (err: unknown) => {
      assert.ok(err instanceof BadRequestError);
      assert.equal(err.param, 'dimensions');
      return true;
    });
  });

  it('endpoints serve their kind only: chat on the embeddings endpoint and embeddings on the chat endpoint are 400s', async () => {
    const chatOnEmbeddings = await post(`${url}/chat/completions`, { model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(chatOnEmbeddings.status, 400);
    const e1 = (await chatOnEmbeddings.json()) as { error: { code: string; message: string } };
    validate('ErrorResponse', e1);
    assert.equal(e1.error.code, 'endpoint_kind_mismatch');
    assert.match(e1.error.message, /serves embeddings/);
    const embeddingsOnChat = await post(`${platform.baseUrl('demo', 'chat')}/embeddings`, { model: 'm', input: 'hi' });
    assert.equal(embeddingsOnChat.status, 400);
    const e2 = (await embeddingsOnChat.json()) as { error: { code: string; message: string } };
    assert.equal(e2.error.code, 'endpoint_kind_mismatch');
    assert.match(e2.error.message, /serves chat/);
    // The models list still names the endpoint's model.
    const models = await client.models.list();
    assert.equal(models.data[0]?.id, 'xerotier-tiny-successor');
  });

  it('charges quota like chat: one request each, and exactly the tokens reported to the client', async () => {
    const quotaChannel = createGrpcChannel(`127.0.0.1:${platform.quotaPort}`);
    const authChannel = createGrpcChannel(`127.0.0.1:${platform.authPort}`);
    try {
      const quota = createAppClient(QuotaServiceDefinition, quotaChannel, { address: '', target: 'quota' });
      const auth = createAppClient(AuthServiceDefinition, authChannel, { address: '', target: 'auth' });
      const { principal } = await auth.authenticate(
        { apiKey: platform.demoKey, project: 'demo', endpoint: 'embeddings', requiredScope: Scope.SCOPE_INFERENCE },
        callOptions('t'),
      );
      const charged = async () => {
        const l = await quota.getLimits({ keyId: principal!.keyId, tier: 'cpu_standard' }, callOptions('t'));
        return { tokens: l.tokens!.limit - l.tokens!.remaining, requests: l.requests!.limit - l.requests!.remaining };
      };
      const settled = async (expected: { tokens: number; requests: number }) => {
        let value = await charged();
        for (let i = 0; i < 50 && (value.tokens !== expected.tokens || value.requests !== expected.requests); i++) {
          await new Promise((r) => setTimeout(r, 20));
          value = await charged();
        }
        return value;
      };
      const before = await settled(await charged());
      const r1 = await client.embeddings.create({ model: 'm', input: ['one text', 'another one'] });
      const r2 = await client.embeddings.create({ model: 'm', input: 'x'.repeat(300) });
      const expected = { tokens: before.tokens + r1.usage.total_tokens + r2.usage.total_tokens, requests: before.requests + 2 };
      assert.deepEqual(await settled(expected), expected);
    } finally {
      quotaChannel.close();
      authChannel.close();
    }
  });
});
