/**
 * Shared fast-check harness: random sequences of reserve / settle / peek / time advance, run
 * against a store and the reference model side by side; every output must be equal, and the
 * documented bound must hold on what the store admitted.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { LimitPolicy, QuotaStore } from '../../services/quota/src/stores/store.js';
import { ReferenceModel } from './reference-model.js';

export type Command =
  | { op: 'reserve'; scope: number; id: number; tokens: number }
  | { op: 'settle'; scope: number; id: number; tokens: number }
  | { op: 'peek'; scope: number }
  | { op: 'advance'; ms: number };

export interface Scenario {
  policy: LimitPolicy;
  start: number;
  commands: Command[];
}

const WINDOW = 60_000;

// A small id pool makes retries, double settlements and settlements of expired or unknown ids common;
// 0 tokens (a request cancelled before any output) and estimates above the limit must show up too.
const idArb = fc.nat(7);
const tokensArb = fc.oneof(fc.constant(0), fc.nat(300), fc.nat(2_200));

export const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  policy: fc.record({
    requests: fc.option(fc.integer({ min: 1, max: 8 }), { freq: 8 }),
    tokens: fc.option(fc.integer({ min: 1, max: 2_000 }), { freq: 8 }),
    windowMs: fc.constant(WINDOW),
  }),
  start: fc.integer({ min: 1_700_000_000_000, max: 1_800_000_000_000 }),
  commands: fc.array(
    fc.oneof(
      { weight: 5, arbitrary: fc.record({ op: fc.constant('reserve' as const), scope: fc.nat(1), id: idArb, tokens: tokensArb }) },
      { weight: 3, arbitrary: fc.record({ op: fc.constant('settle' as const), scope: fc.nat(1), id: idArb, tokens: tokensArb }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('peek' as const), scope: fc.nat(1) }) },
      {
        weight: 3,
        arbitrary: fc.record({
          op: fc.constant('advance' as const),
          // Mostly small steps (bursts), sometimes across most or all of a window.
          ms: fc.oneof(fc.integer({ min: 0, max: 2_000 }), fc.integer({ min: 0, max: 70_000 }), fc.constantFrom(WINDOW - 1, WINDOW, WINDOW + 1)),
        }),
      },
    ),
    { minLength: 1, maxLength: 60, size: 'max' },
  ),
});

/** Runs one scenario; `scopePrefix` isolates runs that share a store. */
export async function runScenario(store: QuotaStore, scenario: Scenario, scopePrefix: string): Promise<void> {
  const model = new ReferenceModel();
  const { policy } = scenario;
  let now = scenario.start;
  const admitted = new Map<string, number[]>();
  for (const [step, c] of scenario.commands.entries()) {
    const where = `step ${step} ${JSON.stringify(c)} at +${now - scenario.start}ms`;
    if (c.op === 'advance') {
      now += c.ms;
      continue;
    }
    const scope = `${scopePrefix}:s${c.scope}`;
    if (c.op === 'reserve') {
      const id = `r${c.id}`;
      const got = await store.reserve(scope, { requestId: id, tokens: c.tokens }, policy, now);
      const want = model.reserve(scope, id, c.tokens, policy, now);
      assert.deepStrictEqual(got, want, where);
      if (got.allowed && !got.duplicate) {
        // Bound at admission: nothing admitted pushes a window over its limits.
        if (policy.requests !== null) assert.ok(got.requests.used <= policy.requests, `${where}: requests bound`);
        if (policy.tokens !== null) assert.ok(got.tokens.used <= policy.tokens, `${where}: tokens bound`);
        admitted.set(scope, [...(admitted.get(scope) ?? []), now]);
      }
      if (!got.allowed) assert.ok(got.retryable ? got.retryAfterMs > 0 && got.retryAfterMs <= policy.windowMs : got.retryAfterMs === 0, where);
    } else if (c.op === 'settle') {
      const id = `r${c.id}`;
      const got = await store.settle(scope, { requestId: id, tokens: c.tokens }, policy, now);
      assert.deepStrictEqual(got, model.settle(scope, id, c.tokens, policy, now), where);
    } else {
      assert.deepStrictEqual(await store.peek(scope, policy, now), model.snapshot(scope, policy, now), where);
    }
  }
  // Rolling-window bound on requests: no interval of length windowMs holds more than the limit.
  if (policy.requests !== null) {
    for (const times of admitted.values()) {
      for (const t of times) {
        const inWindow = times.filter((u) => u > t - policy.windowMs && u <= t).length;
        assert.ok(inWindow <= policy.requests, `rolling window ending ${t} admitted ${inWindow} > ${policy.requests}`);
      }
    }
  }
}
