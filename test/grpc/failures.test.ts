/**
 * Failures at the gRPC front door against the whole platform: a cancelled call cancels the
 * generation on the worker; the caller's deadline and the tier's timeout end a call with
 * DEADLINE_EXCEEDED and free the worker; rate limits are RESOURCE_EXHAUSTED with RetryInfo and
 * QuotaFailure; a platform without a live worker is UNAVAILABLE with RetryInfo; a drain ends a
 * running stream with gateway_draining. Every status carries the same code string as HTTP.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Status } from 'nice-grpc';
import { ChatClientError } from '../../client/chat-client.js';
import { createSimulatorEngine } from '../../services/inference/src/engines/simulator/simulator-engine.js';
import { SIMULATOR_DEFAULTS, startPlatform, waitFor } from '../helpers/platform.js';
import { cpuStandardTiers, unthrottledTiers } from '../helpers/tiers.js';
import { ask, clientFor, failure } from './helpers.js';

/** A slow, long simulator that reports which requests the worker saw cancelled. */
function slowEngine(cancelled: Map<string, number>, overrides: { timeToFirstTokenMs?: number } = {}) {
  return createSimulatorEngine({
    ...SIMULATOR_DEFAULTS,
    tokensPerSecond: 20,
    responseTokens: 2000,
    ...overrides,
    onCancel: (id) => cancelled.set(id, performance.now()),
  });
}

describe('gRPC front door: failures', () => {
  it('a call cancelled mid-stream cancels the generation on the worker', async () => {
    const cancelled = new Map<string, number>();
    const platform = await startPlatform({ engines: [slowEngine(cancelled)] });
    const chat = clientFor(platform);
    try {
      const abort = new AbortController();
      let requestId = '';
      let deltas = 0;
      let abortedAt = 0;
      await assert.rejects(async () => {
        const options = { signal: abort.signal, onMetadata: (m: Record<string, string>) => (requestId = m['x-request-id'] ?? '') };
        for await (const e of chat.createChatCompletion(ask({ maxCompletionTokens: 2000 }), options)) {
          if (e.delta && ++deltas === 3) {
            abortedAt = performance.now();
            abort.abort();
          }
        }
      });
      assert.equal(deltas, 3);
      await waitFor(() => cancelled.has(requestId), 5000, 'the worker sees the cancel');
      console.log(`# gRPC cancel → worker cancel: ${((cancelled.get(requestId) ?? 0) - abortedAt).toFixed(1)} ms`);
      await waitFor(() => platform.workers[0]!.service.status().inFlightCount === 0, 2000, 'worker slot released');
    } finally {
      chat.close();
      await platform.stop();
    }
  });

  it("the caller's deadline ends the call with DEADLINE_EXCEEDED and reaches the worker, also before the first token", async () => {
    const cancelled = new Map<string, number>();
    const platform = await startPlatform({ engines: [slowEngine(cancelled, { timeToFirstTokenMs: 5000 })] });
    const chat = clientFor(platform);
    try {
      let requestId = '';
      const started = performance.now();
      const call = chat.complete(ask({ maxCompletionTokens: 2000 }), { deadline: 600, onMetadata: (m) => (requestId = m['x-request-id'] ?? '') });
      const err = await call.then(() => assert.fail('expected DEADLINE_EXCEEDED'), (e: unknown) => e);
      const ms = performance.now() - started;
      assert.ok(err instanceof ChatClientError, String(err));
      console.log(`# caller deadline 600 ms (first token due at 5 s): call ended after ${ms.toFixed(0)} ms (code ${err.code})`);
      assert.equal(err.status, Status.DEADLINE_EXCEEDED);
      assert.ok(ms >= 500 && ms < 1500, `ended at the deadline, not at the local backstop (${ms} ms)`);
      await waitFor(() => cancelled.has(requestId), 3000, 'the worker sees the cancel');
      await waitFor(() => platform.workers[0]!.service.status().inFlightCount === 0, 3000, 'worker slot released');
    } finally {
      chat.close();
      await platform.stop();
    }
  });

  it("the tier's request timeout caps a longer caller deadline: DEADLINE_EXCEEDED with code request_timeout", async () => {
    const cancelled = new Map<string, number>();
    const tiers = unthrottledTiers({ requestTimeoutSeconds: 1 });
    const platform = await startPlatform({ engines: [slowEngine(cancelled)], gatewayEnv: { TIERS_FILE: tiers }, quotaEnv: { TIERS_FILE: tiers } });
    const chat = clientFor(platform);
    try {
      const started = performance.now();
      await failure(chat.complete(ask({ maxCompletionTokens: 2000 }), { deadline: 30_000 }), Status.DEADLINE_EXCEEDED, 'request_timeout');
      const ms = performance.now() - started;
      console.log(`# tier timeout 1 s under a 30 s caller deadline: call ended after ${ms.toFixed(0)} ms`);
      assert.ok(ms >= 900 && ms < 5000, `${ms} ms`);
      await waitFor(() => cancelled.size === 1, 3000, 'the worker sees the cancel');
    } finally {
      chat.close();
      await platform.stop();
    }
  });

  it('rate limits are RESOURCE_EXHAUSTED with RetryInfo, QuotaFailure and rate-limit metadata', async () => {
    const tiers = cpuStandardTiers({ requestsPerMinute: 2, tokensPerMinute: 1_000_000 });
    const platform = await startPlatform({ gatewayEnv: { TIERS_FILE: tiers }, quotaEnv: { TIERS_FILE: tiers } });
    const chat = clientFor(platform);
    try {
      await chat.complete(ask());
      await chat.complete(ask());
      const err = await failure(chat.complete(ask()), Status.RESOURCE_EXHAUSTED, 'rate_limit_exceeded');
      assert.equal(err.info['type'], 'rate_limit_error');
      assert.ok(err.retryDelayMs !== undefined && err.retryDelayMs >= 1000 && err.retryDelayMs <= 60_000, `retry ${err.retryDelayMs}`);
      assert.equal(err.quotaFailure?.length, 1);
      assert.match(err.quotaFailure?.[0]?.subject ?? '', /^api_key:key_/);
      assert.equal(err.metadata['x-ratelimit-limit-requests'], '2');
      assert.equal(err.metadata['x-ratelimit-remaining-requests'], '0');
    } finally {
      chat.close();
      await platform.stop();
    }
  });

  it('with its only worker down the gateway answers UNAVAILABLE with RetryInfo', async () => {
    const platform = await startPlatform();
    const chat = clientFor(platform);
    try {
      await platform.workers[0]!.stop();
      await waitFor(() => !platform.gateway.fleet.workers[0]!.connected, 5000, 'the gateway sees the worker gone');
      const err = await failure(chat.complete(ask()), Status.UNAVAILABLE, 'no_healthy_worker');
      assert.equal(err.info['http_status'], '503');
      assert.ok(err.retryDelayMs !== undefined && err.retryDelayMs >= 1000, `retry ${err.retryDelayMs}`);
    } finally {
      chat.close();
      await platform.stop();
    }
  });

  it('a stream still running at the end of the drain grace ends with UNAVAILABLE gateway_draining', async () => {
    const cancelled = new Map<string, number>();
    const platform = await startPlatform({ engines: [slowEngine(cancelled)], gatewayEnv: { GATEWAY_DRAIN_GRACE_MS: '1000' } });
    const chat = clientFor(platform);
    try {
      let deltas = 0;
      const stream = (async () => {
        for await (const e of chat.createChatCompletion(ask({ maxCompletionTokens: 2000 }))) if (e.delta) deltas += 1;
      })();
      await waitFor(() => deltas > 0, 5000, 'first delta');
      const stopping = platform.gateway.stop();
      const err = await failure(stream, Status.UNAVAILABLE, 'gateway_draining');
      assert.ok(err.retryDelayMs !== undefined && err.retryDelayMs >= 1000);
      await stopping;
    } finally {
      chat.close();
      await platform.stop();
    }
  });
});
