import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Decision, type LeaseResponse, type LimitStatus, type ReserveResponse } from '../../gen/xerotier/quota/v1/quota_service.js';
import { createLogger } from '../../lib/logging/logger.js';
import { createLeasingQuotaPort, type LeaseCalls } from './quota-leases.js';
import type { QuotaPort } from './upstreams.js';

const status = (remaining: number): LimitStatus => ({ limit: 10_000, remaining, resetTime: new Date(60_000), unlimited: false });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function fakes(grant: { requests: number; tokens: number } | 'refuse', deny = false) {
  const reserves: string[] = [];
  const settles: string[] = [];
  const leases: Array<{ requests: number; tokens: number }> = [];
  const releases: Array<{ leaseId: string; unusedRequests: number; unusedTokens: number }> = [];
  const denial: ReserveResponse = {
    decision: Decision.DECISION_DENY,
    requests: status(0),
    tokens: status(0),
    retryAfterMs: 1234,
    retryable: true,
    deniedBy: 'requests',
  };
  const inner: QuotaPort = {
    async reserve(input) {
      reserves.push(input.requestId);
      if (deny) return denial;
      return { decision: Decision.DECISION_ALLOW, requests: status(5_000), tokens: status(5_000), retryAfterMs: 0, retryable: true, deniedBy: '' };
    },
    settle: (input) => void settles.push(input.requestId),
    limits: async () => undefined,
    close: async () => {},
  };
  let n = 0;
  const calls: LeaseCalls = {
    async lease(input): Promise<LeaseResponse> {
      leases.push({ requests: input.requests, tokens: input.tokens });
      const g = grant === 'refuse' ? { requests: 0, tokens: 0 } : grant;
      return {
        leaseId: g.requests > 0 ? `lease:${++n}` : '',
        grantedRequests: g.requests,
        grantedTokens: g.tokens,
        expireTime: new Date(60_000),
        requestsStatus: status(4_000),
        tokensStatus: status(4_000),
      };
    },
    async releaseLease(input) {
      releases.push({ leaseId: input.leaseId, unusedRequests: input.unusedRequests, unusedTokens: input.unusedTokens });
    },
  };
  return { inner, calls, reserves, settles, leases, releases, denial };
}

const options = { lifetimeMs: 100, hotRequests: 3, hotWindowMs: 1_000, clock: () => performance.now(), logger: createLogger('test', 'silent') };
const req = (i: number) => ({ requestId: `r${i}`, keyId: 'k', tier: 't', tokens: 10 });

describe('leasing quota port', () => {
  it('a cold key reserves per request; a hot key is admitted from its lease, which returns exactly what it did not use', async () => {
    const f = fakes({ requests: 20, tokens: 200 });
    const admitted: string[] = [];
    const port = createLeasingQuotaPort(f.inner, f.calls, { ...options, onAdmission: (s) => admitted.push(s) });
    for (let i = 0; i < 3; i++) await port.reserve(req(i));
    assert.equal(f.reserves.length, 3, 'below and at the threshold: Reserve');
    assert.equal(f.leases.length, 1, 'the third request made the key hot: one lease asked, in the background');
    await sleep(5);
    for (let i = 3; i < 8; i++) {
      const r = await port.reserve(req(i));
      assert.equal(r?.decision, Decision.DECISION_ALLOW);
      // The last status, with what the lease still holds added back.
      assert.equal(r?.requests?.remaining, 4_000 + 20 - (i - 2));
    }
    assert.equal(f.reserves.length, 3, 'no Reserve while the lease covers the requests');
    for (let i = 3; i < 8; i++) port.settle({ ...req(i), tokens: i === 7 ? 25 : 4 });
    for (let i = 0; i < 3; i++) port.settle(req(i));
    assert.deepEqual(f.settles, ['r0', 'r1', 'r2'], 'leased requests settle locally');
    await sleep(150);
    // 5 admitted of 20; tokens 200 − (4 × 4 + 25).
    assert.deepEqual(f.releases, [{ leaseId: 'lease:1', unusedRequests: 15, unusedTokens: 200 - 41 }]);
    assert.deepEqual(admitted, ['reserve', 'reserve', 'reserve', 'lease', 'lease', 'lease', 'lease', 'lease']);
    await port.close();
  });

  it('a refused lease leaves the key on Reserve, and a denial is the Reserve denial itself', async () => {
    const f = fakes('refuse', true);
    const port = createLeasingQuotaPort(f.inner, f.calls, options);
    const answers: Array<ReserveResponse | undefined> = [];
    for (let i = 0; i < 6; i++) {
      answers.push(await port.reserve(req(i)));
      await sleep(2);
    }
    assert.equal(f.reserves.length, 6);
    assert.equal(f.leases.length, 1, 'refused: no new lease asked within a lifetime');
    for (const a of answers) assert.equal(a, f.denial);
    await port.close();
  });

  it('a lease is released only after its running requests settle; close releases at once, counting their estimates as used', async () => {
    const f = fakes({ requests: 10, tokens: 100 });
    const port = createLeasingQuotaPort(f.inner, f.calls, options);
    for (let i = 0; i < 3; i++) await port.reserve(req(i));
    await sleep(5);
    await port.reserve(req(10));
    await port.reserve(req(11));
    port.settle({ ...req(10), tokens: 3 });
    await sleep(150);
    assert.deepEqual(f.releases, [], 'r11 still running: the lease waits for it');
    await port.close();
    assert.deepEqual(f.releases, [{ leaseId: 'lease:1', unusedRequests: 8, unusedTokens: 100 - 3 - 10 }]);
  });
});
