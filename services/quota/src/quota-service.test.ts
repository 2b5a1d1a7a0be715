import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CallContext } from 'nice-grpc';
import { Decision } from '../../../gen/xerotier/quota/v1/quota_service.js';
import { AppError } from '../../../lib/errors/app-error.js';
import type { RequestContext } from '../../../lib/grpc/server.js';
import { createLogger } from '../../../lib/logging/logger.js';
import { loadTierTable } from '../../../lib/tiers/tier-table.js';
import { manualClock } from './clock.js';
import { createQuotaService } from './quota-service.js';
import { createMemoryStore } from './stores/memory.js';

const context = { logger: createLogger('quota-test', 'silent'), requestId: 't' } as unknown as CallContext & RequestContext;

function setup() {
  const clock = manualClock(1_700_000_000_000);
  const service = createQuotaService({ store: createMemoryStore(), tiers: loadTierTable(), clock });
  return { clock, impl: service.impl, service };
}

describe('quota service', () => {
  it('fills both limit statuses on allow and deny, reset = when the window is fully available', async () => {
    const { impl, clock } = setup();
    const t0 = clock();
    for (let i = 0; i < 20; i++) {
      const r = await impl.reserve({ requestId: `r${i}`, keyId: 'k', tier: 'free', tokenCount: 10 }, context);
      assert.equal(r.decision, Decision.DECISION_ALLOW);
      assert.deepEqual(r.requests, { limit: 20, remaining: 19 - i, resetTime: new Date(t0 + i * 100 + 60_000), unlimited: false });
      assert.deepEqual(r.tokens, { limit: 10_000, remaining: 10_000 - 10 * (i + 1), resetTime: new Date(t0 + i * 100 + 60_000), unlimited: false });
      assert.equal(r.deniedBy, '');
      clock.advance(100);
    }
    const denied = await impl.reserve({ requestId: 'x', keyId: 'k', tier: 'free', tokenCount: 10 }, context);
    assert.equal(denied.decision, Decision.DECISION_DENY);
    assert.equal(denied.deniedBy, 'requests');
    assert.equal(denied.retryable, true);
    assert.equal(denied.retryAfterMs, 60_000 - 2_000);
    assert.equal(denied.requests!.remaining, 0);
  });

  it('keeps limits per (tier, key)', async () => {
    const { impl } = setup();
    await impl.reserve({ requestId: 'a', keyId: 'k1', tier: 'free', tokenCount: 1 }, context);
    const other = await impl.reserve({ requestId: 'a', keyId: 'k2', tier: 'free', tokenCount: 1 }, context);
    assert.equal(other.requests!.remaining, 19, 'another key is not charged');
    const otherTier = await impl.reserve({ requestId: 'a', keyId: 'k1', tier: 'cpu_standard', tokenCount: 1 }, context);
    assert.equal(otherTier.requests!.remaining, 59);
  });

  it('self-hosted: always allows, unlimited statuses, nothing recorded', async () => {
    const { impl, clock } = setup();
    for (let i = 0; i < 1_000; i++) {
      const r = await impl.reserve({ requestId: `r${i}`, keyId: 'k', tier: 'self_hosted', tokenCount: 10_000_000 }, context);
      assert.equal(r.decision, Decision.DECISION_ALLOW);
    }
    const limits = await impl.getLimits({ keyId: 'k', tier: 'self_hosted' }, context);
    assert.deepEqual(limits.requests, { limit: 0, remaining: 0, resetTime: new Date(clock()), unlimited: true });
    assert.deepEqual(limits.tokens, { limit: 0, remaining: 0, resetTime: new Date(clock()), unlimited: true });
    const s = await impl.settle({ requestId: 'r1', keyId: 'k', tier: 'self_hosted', tokenCount: 5 }, context);
    assert.equal(s.applied, false);
    assert.equal(s.tokens!.unlimited, true);
  });

  it('rejects bad calls as invalid_request (INVALID_ARGUMENT), never as a deny', async () => {
    const { impl } = setup();
    const bad: Array<[string, Promise<unknown>]> = [
      ['tier', impl.reserve({ requestId: 'r', keyId: 'k', tier: 'platinum', tokenCount: 1 }, context)],
      ['request_id', impl.reserve({ requestId: '', keyId: 'k', tier: 'free', tokenCount: 1 }, context)],
      ['key_id', impl.reserve({ requestId: 'r', keyId: '', tier: 'free', tokenCount: 1 }, context)],
      ['token_count', impl.reserve({ requestId: 'r', keyId: 'k', tier: 'free', tokenCount: -1 }, context)],
      ['token_count', impl.settle({ requestId: 'r', keyId: 'k', tier: 'free', tokenCount: 1.5 }, context)],
      ['request_id', impl.settle({ requestId: 'x'.repeat(257), keyId: 'k', tier: 'free', tokenCount: 1 }, context)],
      ['tier', impl.getLimits({ keyId: 'k', tier: 'nope' }, context)],
    ];
    for (const [param, call] of bad) {
      await assert.rejects(call, (err: unknown) => err instanceof AppError && err.kind === 'invalid_request' && err.param === param);
    }
  });

  it('reports zero store errors for the memory store', () => {
    assert.deepEqual(setup().service.stats(), { store: 'memory', storeErrors: 0, outages: 0, degraded: false, pendingSettlements: 0 });
  });
});
