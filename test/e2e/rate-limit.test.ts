/**
 * Rate limits as an SDK user meets them: 429 `RateLimitError` with `x-ratelimit-*` headers
 * and a true Retry-After that the official SDK honours, and no retry at all when the request can
 * never fit (`x-should-retry: false`).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import OpenAI, { RateLimitError } from 'openai';
import { AuthServiceDefinition, Scope } from '../../gen/xerotier/auth/v1/auth_service.js';
import { QuotaServiceDefinition } from '../../gen/xerotier/quota/v1/quota_service.js';
import { callOptions, createAppClient, createGrpcChannel } from '../../lib/grpc/client.js';
import { startPlatform } from '../helpers/platform.js';
import { cpuStandardTiers } from '../helpers/tiers.js';

const tiers = (requestsPerMinute: number, tokensPerMinute: number): string => cpuStandardTiers({ requestsPerMinute, tokensPerMinute });

/** A fetch that counts the requests the SDK really sends. */
function countingFetch() {
  const calls: number[] = [];
  const fetchFn: typeof fetch = (input, init) => {
    calls.push(performance.now());
    return fetch(input, init);
  };
  return { fetchFn, calls };
}

const ask = { model: 'm', messages: [{ role: 'user' as const, content: 'hi' }], max_tokens: 10 };

describe('rate limits through the SDK', () => {
  it('429 RateLimitError with headers; the SDK waits the stated Retry-After and then succeeds', async () => {
    let offset = 0;
    const file = tiers(3, 1_000_000);
    const platform = await startPlatform({ gatewayEnv: { TIERS_FILE: file }, quotaEnv: { TIERS_FILE: file }, quotaClock: () => Date.now() + offset });
    try {
      const plain = new OpenAI({ baseURL: platform.baseUrl(), apiKey: platform.demoKey, maxRetries: 0 });
      for (let i = 0; i < 3; i++) {
        const { response } = await plain.chat.completions.create(ask).withResponse();
        assert.equal(response.headers.get('x-ratelimit-limit'), '3');
        assert.equal(response.headers.get('x-ratelimit-remaining'), String(2 - i));
      }
      await assert.rejects(plain.chat.completions.create(ask), (err: unknown) => {
        assert.ok(err instanceof RateLimitError);
        assert.equal(err.type, 'rate_limit_error');
        assert.equal(err.code, 'rate_limit_exceeded');
        assert.equal(err.headers?.get('x-ratelimit-remaining'), '0');
        const retryAfter = Number(err.headers?.get('retry-after'));
        assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `retry-after ${retryAfter}`);
        assert.ok(Number(err.headers?.get('x-ratelimit-reset')) >= Math.floor(Date.now() / 1000));
        return true;
      });
      // Move the window so the oldest request leaves it in about a second: Retry-After must say so.
      offset = 59_000;
      const { fetchFn, calls } = countingFetch();
      const retrying = new OpenAI({ baseURL: platform.baseUrl(), apiKey: platform.demoKey, maxRetries: 2, fetch: fetchFn });
      const started = performance.now();
      const ok = await retrying.chat.completions.create(ask);
      const waited = performance.now() - started;
      console.log(`# SDK retried after ${waited.toFixed(0)} ms with ${calls.length} requests`);
      assert.equal(ok.object, 'chat.completion');
      assert.equal(calls.length, 2, 'one 429, then one successful retry');
      assert.ok(waited >= 900, `the SDK waited the stated time (${waited} ms)`);
    } finally {
      await platform.stop();
    }
  });

  it('a request that can never fit is refused at once with x-should-retry: false and never retried', async () => {
    const file = tiers(100, 1000);
    const platform = await startPlatform({ gatewayEnv: { TIERS_FILE: file }, quotaEnv: { TIERS_FILE: file } });
    try {
      const { fetchFn, calls } = countingFetch();
      const client = new OpenAI({ baseURL: platform.baseUrl(), apiKey: platform.demoKey, maxRetries: 3, fetch: fetchFn });
      // A prompt of ~1,250 tokens can never fit a 1,000 tokens/min tier.
      const huge = { ...ask, messages: [{ role: 'user' as const, content: 'word '.repeat(1000) }] };
      await assert.rejects(client.chat.completions.create(huge), (err: unknown) => {
        assert.ok(err instanceof RateLimitError);
        assert.equal(err.headers?.get('x-should-retry'), 'false');
        // Every 429 carries Retry-After; x-should-retry: false still wins for the SDK.
        assert.ok(Number(err.headers?.get('retry-after')) >= 1);
        return true;
      });
      assert.equal(calls.length, 1, 'no retry');
      // A small request still fits.
      const ok = await client.chat.completions.create(ask);
      assert.equal(ok.object, 'chat.completion');
    } finally {
      await platform.stop();
    }
  });
});

describe('token billing through the gateway', () => {
  it('charges exactly the engine-counted usage reported to the client (settled, ±0)', async () => {
    const file = cpuStandardTiers({ requestsPerMinute: 1000, tokensPerMinute: 10_000_000 });
    const platform = await startPlatform({ gatewayEnv: { TIERS_FILE: file }, quotaEnv: { TIERS_FILE: file } });
    const channel = createGrpcChannel(`127.0.0.1:${platform.quotaPort}`);
    const quota = createAppClient(QuotaServiceDefinition, channel, { address: '', target: 'quota' });
    try {
      const client = new OpenAI({ baseURL: platform.baseUrl(), apiKey: platform.demoKey, maxRetries: 0 });
      let expected = 0;
      for (let i = 0; i < 5; i++) {
        const r = await client.chat.completions.create({ ...ask, max_tokens: 3 + i });
        expected += r.usage!.total_tokens;
      }
      const stream = await client.chat.completions.create({ ...ask, stream: true, stream_options: { include_usage: true } });
      for await (const chunk of stream) if (chunk.usage) expected += chunk.usage.total_tokens;
      // The key id: what the gateway charged is what the quota service holds for it.
      const { keyId } = await keyOf(platform);
      const charged = async (): Promise<number> => {
        const l = await quota.getLimits({ keyId, tier: 'cpu_standard' }, callOptions('t'));
        return l.tokens!.limit - l.tokens!.remaining;
      };
      let value = -1;
      for (let i = 0; i < 50 && value !== expected; i++) {
        value = await charged();
        if (value !== expected) await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(value, expected, 'Σ charged = Σ usage reported to the client (settled, ±0)');
    } finally {
      channel.close();
      await platform.stop();
    }
  });
});

async function keyOf(platform: Awaited<ReturnType<typeof startPlatform>>): Promise<{ keyId: string }> {
  const channel = createGrpcChannel(`127.0.0.1:${platform.authPort}`);
  try {
    const auth = createAppClient(AuthServiceDefinition, channel, { address: '', target: 'auth' });
    const r = await auth.authenticate(
      { apiKey: platform.demoKey, project: 'demo', endpoint: 'chat', requiredScope: Scope.SCOPE_INFERENCE },
      callOptions('t'),
    );
    return { keyId: r.principal!.keyId };
  } finally {
    channel.close();
  }
}
