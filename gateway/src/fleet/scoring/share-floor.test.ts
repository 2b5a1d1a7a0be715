import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Candidate, RoutingHint } from './candidate.js';
import { seededRandom } from './random.js';
import { createRouter, type Router } from './router.js';
import { DEFAULT_ROUTING, type RoutingSettings } from './settings.js';
import { createShareWindow, degraded, floorPick, type FloorCandidate } from './share-floor.js';

const NO_HINT: RoutingHint = { prefixBlocks: [], promptTokens: 10, project: undefined };
const UNKNOWN = { tokensPerSecond: undefined, ttftHitMs: undefined, ttftMissMs: undefined };

function candidate(address: string): Candidate {
  return { key: { address }, address, inFlight: 0, capacity: 2, reportedTtftMs: undefined, owner: undefined };
}

function router(over: Partial<RoutingSettings>): { r: Router; clock: { now: number } } {
  const clock = { now: 0 };
  return { r: createRouter({ settings: { ...DEFAULT_ROUTING, exploration: 0, ...over }, random: seededRandom(3), now: () => clock.now }), clock };
}

/**
 * Sends `n` requests one at a time; worker i answers with `speed(i, k)`: its TTFT and the time
 * its 10 tokens take. Returns the index of the worker each request went to.
 */
function traffic(r: Router, clock: { now: number }, cs: Candidate[], speed: (i: number, k: number) => { ttftMs: number; decodeMs: number }, n: number): number[] {
  const picks: number[] = [];
  for (let k = 0; k < n; k++) {
    const { index, dispatch } = r.choose(cs, NO_HINT);
    picks.push(index);
    const { ttftMs, decodeMs } = speed(index, k);
    clock.now = dispatch.sentAt + ttftMs;
    r.firstToken(cs[index]!.key, dispatch);
    r.progress(dispatch, 1);
    clock.now += decodeMs;
    r.progress(dispatch, 9);
    r.ended(cs[index]!.key, dispatch, true);
    clock.now += 10;
  }
  return picks;
}

const FLOOR: FloorCandidate = { deficit: 1, degraded: false, silent: false, longSilent: false, free: true, holdsPrefix: true };

describe('share floor', () => {
  it('a window asks for the share of the requests it holds, in whole requests, and forgets the oldest', () => {
    const w = createShareWindow(40);
    assert.equal(w.deficit(0.05), 0, 'nothing seen, nothing owed');
    w.record(false);
    assert.equal(w.deficit(0.05), 1, 'one request missed: one owed (⌈5 % of 1⌉)');
    w.record(true);
    for (let k = 0; k < 19; k++) w.record(false);
    assert.equal(w.deficit(0.05), 1, '1 of 21 is short of ⌈1.05⌉ = 2');
    w.record(true);
    assert.equal(w.deficit(0.05), 0);
    for (let k = 0; k < 40; k++) w.record(false);
    assert.equal(w.deficit(0.05), 2, 'both requests it got have left the window of 40');
    assert.equal(w.deficit(0), 0);
  });

  it('degraded: slower than its own best (decode rate, the newer TTFT kind, or a late request), not slow by nature', () => {
    const best = { tokensPerSecond: 40, ttftHitMs: 100, ttftMissMs: 1000 };
    assert.equal(degraded(best, best, 'hit', 1), false);
    assert.equal(degraded(UNKNOWN, UNKNOWN, undefined, 1), false, 'a new worker is not degraded');
    assert.equal(degraded({ ...best, tokensPerSecond: 19 }, best, 'hit', 1), true);
    assert.equal(degraded({ ...best, ttftHitMs: 201 }, best, 'hit', 1), true);
    // The older kind's figure may predate a recovery: only the kind measured last counts.
    assert.equal(degraded({ ...best, ttftMissMs: 5000 }, best, 'hit', 1), false);
    assert.equal(degraded({ ...best, ttftMissMs: 5000 }, best, 'miss', 1), true);
    assert.equal(degraded(best, best, 'hit', 2), true, 'a request there twice as late as expected');
  });

  it('picks the worker furthest below the floor that can take the request at once', () => {
    assert.equal(floorPick([{ ...FLOOR, deficit: 0 }, FLOOR]), 1);
    assert.equal(floorPick([FLOOR, { ...FLOOR, deficit: 2 }]), 1);
    assert.equal(floorPick([{ ...FLOOR, holdsPrefix: false }, FLOOR]), 1, 'among equals, the one that holds the prefix');
    assert.equal(floorPick([{ ...FLOOR, free: false }]), -1, 'never behind a queue');
    assert.equal(floorPick([{ ...FLOOR, holdsPrefix: false }]), -1, 'one request short: only with a cached prompt');
    assert.equal(floorPick([{ ...FLOOR, holdsPrefix: false, deficit: 2 }]), 0, 'two short: any prompt');
    assert.equal(floorPick([{ ...FLOOR, degraded: true }]), -1, 'a degraded worker is not kept busy');
    assert.equal(floorPick([{ ...FLOOR, degraded: true, silent: true }]), 0, 'but is probed once not heard from');
    const probe = { ...FLOOR, degraded: true, silent: true, holdsPrefix: false };
    assert.equal(floorPick([{ ...probe, deficit: 5 }]), -1, 'however short, a degraded worker is probed only with a cached prompt');
    assert.equal(floorPick([{ ...probe, longSilent: true }]), 0, 'until it has been silent for long');
  });

  it('a healthy worker four times slower keeps 5 % of its last 40 requests; without the floor it gets none', () => {
    const cs = ['a', 'b', 'c', 'slow'].map(candidate);
    const speed = (i: number) => (i === 3 ? { ttftMs: 200, decodeMs: 400 } : { ttftMs: 50, decodeMs: 100 });
    const run = (minShare: number): number[] => {
      const { r, clock } = router({ minShare, minShareWindow: 40 });
      return traffic(r, clock, cs, speed, 400);
    };
    const off = run(0);
    assert.ok(off.slice(40).filter((i) => i === 3).length <= 1, `without the floor: ${off.filter((i) => i === 3).length}`);
    const on = run(0.05);
    // When one of its requests leaves the window, the next request refills it: any 41 hold 2.
    for (let end = 41; end <= on.length; end++) {
      const got = on.slice(end - 41, end).filter((i) => i === 3).length;
      assert.ok(got >= 2, `requests ${end - 41}–${end}: the slow worker got ${got}`);
    }
    assert.ok(on.filter((i) => i === 3).length <= 0.08 * on.length, 'and not much more than the floor');
  });

  it('a worker that slowed down is not kept busy by the floor: at most one probe per silence', () => {
    const cs = ['a', 'b', 'c', 'd'].map(candidate);
    // A degraded worker's silence (probeDegradedAfterRequests) is the one that spaces its probes.
    const afterRequests = 12;
    const { r, clock } = router({ minShare: 0.05, minShareWindow: 40, silence: { afterRequests: 24, afterMs: 0, maxMs: 0 }, probeDegradedAfterRequests: afterRequests });
    traffic(r, clock, cs, () => ({ ttftMs: 50, decodeMs: 100 }), 40);
    // d becomes 8× slower.
    const picks = traffic(r, clock, cs, (i) => (i === 3 ? { ttftMs: 400, decodeMs: 800 } : { ttftMs: 50, decodeMs: 100 }), 400);
    const toD = picks.flatMap((i, k) => (i === 3 ? [k] : []));
    const settled = toD.filter((k) => k > 5);
    for (let j = 1; j < settled.length; j++) assert.ok(settled[j]! - settled[j - 1]! > afterRequests, `requests to the slow worker: ${toD.join(',')}`);
    assert.ok(settled.length >= 2, `it is still probed now and then: ${toD.join(',')}`);
    // Recovered: a probe finds it fast again and the floor (and the scorer) bring it back.
    const back = traffic(r, clock, cs, () => ({ ttftMs: 50, decodeMs: 100 }), 120);
    assert.ok(back.slice(60).filter((i) => i === 3).length >= 3, `after recovery: ${back.flatMap((i, k) => (i === 3 ? [k] : [])).join(',')}`);
  });
});
