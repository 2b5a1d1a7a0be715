/**
 * Rate limits as an SDK user meets them (issue 4): 429 `RateLimitError` with the seed's headers
 * and a true Retry-After that the official SDK honours, and no retry at all when the request can
 * never fit (`x-should-retry: false`).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import OpenAI, { RateLimitError } from 'openai';
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
      await assert.rejects(client.chat.completions.create({ ...ask, max_tokens: 1500 }), (err: unknown) => {
        assert.ok(err instanceof RateLimitError);
        assert.equal(err.headers?.get('x-should-retry'), 'false');
        assert.equal(err.headers?.get('retry-after'), null);
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
