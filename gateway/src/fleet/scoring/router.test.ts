import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { prefixBlockHashes } from '../../../../lib/chat/prefix-blocks.js';
import type { Candidate, RoutingHint } from './candidate.js';
import { weightedPick } from './pick.js';
import { seededRandom } from './random.js';
import { createRouter, type Router } from './router.js';
import { features, scores } from './score.js';
import { DEFAULT_ROUTING, type RoutingSettings } from './settings.js';

const NO_HINT: RoutingHint = { prefixBlocks: [], promptTokens: 10, project: undefined };

function candidate(address: string, over: Partial<Candidate> = {}): Candidate {
  return { key: { address }, address, inFlight: 0, capacity: 4, reportedTtftMs: undefined, owner: undefined, ...over };
}

function router(over: Partial<RoutingSettings> = {}, seed = 1): Router {
  return createRouter({ settings: { ...DEFAULT_ROUTING, ...over }, random: seededRandom(seed) });
}

/** Counts how often each candidate is chosen over `n` picks with the same view. */
function shares(r: Router, cs: Candidate[], n: number, hint = NO_HINT): number[] {
  const counts = cs.map(() => 0);
  for (let i = 0; i < n; i++) counts[r.choose(cs, hint)]! += 1;
  return counts.map((c) => c / n);
}

describe('scorer features', () => {
  it('load falls with occupancy relative to capacity', () => {
    const f = features([candidate('a'), candidate('b', { inFlight: 4 }), candidate('c', { inFlight: 8, capacity: 4 })], [0, 1, 2].map(() => ({ ttftMs: undefined, tokensPerSecond: undefined, prefixMatched: 0 })), NO_HINT);
    assert.deepEqual(f.map((x) => x.load), [1, 0.5, 1 / 3]);
  });

  it('ttft and throughput are relative to the best candidate; unknown counts as best', () => {
    const f = features(
      [candidate('a'), candidate('b'), candidate('c', { reportedTtftMs: 400 })],
      [
        { ttftMs: 100, tokensPerSecond: 50, prefixMatched: 0 },
        { ttftMs: 300, tokensPerSecond: 100, prefixMatched: 0 },
        { ttftMs: undefined, tokensPerSecond: undefined, prefixMatched: 0 },
      ],
      NO_HINT,
    );
    assert.deepEqual(f.map((x) => x.ttft), [1, 1 / 3, 0.25]);
    assert.deepEqual(f.map((x) => x.throughput), [0.5, 1, 1]);
  });

  it('prefix is the share of the prompt blocks held; owner matches the calling project', () => {
    const hint = { prefixBlocks: ['x', 'y', 'z', 'w'], promptTokens: 100, project: 'p1' };
    const f = features(
      [candidate('a', { owner: 'p1' }), candidate('b', { owner: 'p2' })],
      [
        { ttftMs: undefined, tokensPerSecond: undefined, prefixMatched: 3 },
        { ttftMs: undefined, tokensPerSecond: undefined, prefixMatched: 0 },
      ],
      hint,
    );
    assert.deepEqual(f.map((x) => [x.prefix, x.owner]), [[0.75, 1], [0, 0]]);
  });

  it('the score is the weighted mean of the features', () => {
    const [s] = scores([{ load: 1, ttft: 0.5, throughput: 0, prefix: 1, owner: 0 }], { load: 1, ttft: 2, throughput: 0, prefix: 1, owner: 0 });
    assert.equal(s, (1 + 2 * 0.5 + 1) / 4);
  });
});

describe('weighted pick', () => {
  it('is deterministic for a seed and only picks within the band (no exploration)', () => {
    const picks = (seed: number): number[] => {
      const r = seededRandom(seed);
      return Array.from({ length: 200 }, () => weightedPick([0.9, 0.85, 0.5], r, { exploration: 0, band: 0.1 }));
    };
    const a = picks(7);
    assert.deepEqual(a, picks(7));
    assert.ok(!a.includes(2), 'a candidate below the band is never picked');
    assert.ok(a.filter((i) => i === 0).length > a.filter((i) => i === 1).length, 'the best is the most likely');
    assert.ok(a.includes(1), 'a near-tie shares the traffic');
  });

  it('exploration gives every candidate some picks', () => {
    const r = seededRandom(3);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) counts[weightedPick([1, 0.2, 0.2, 0.2], r, { exploration: 0.1, band: 0 })]! += 1;
    for (const c of counts.slice(1)) assert.ok(c / 4000 > 0.015 && c / 4000 < 0.04, `explored share ${c / 4000}`);
  });
});

describe('router', () => {
  it('feedback moves traffic away from a worker that became slow, and back after it recovers', () => {
    const r = router({ exploration: 0.05 });
    const cs = [candidate('fast'), candidate('slow')];
    for (let i = 0; i < 5; i++) {
      r.observe(cs[0]!.key, { ttftMs: 100, tokens: 10, decodeMs: 200 });
      r.observe(cs[1]!.key, { ttftMs: 100, tokens: 10, decodeMs: 200 });
    }
    const before = shares(r, cs, 2000);
    assert.ok(before[1]! > 0.35, `equal workers share: ${before.join(', ')}`);
    for (let i = 0; i < 5; i++) r.observe(cs[1]!.key, { ttftMs: 800, tokens: 10, decodeMs: 1600 });
    const slowed = shares(r, cs, 2000);
    assert.ok(slowed[1]! < 0.1, `slow worker's share after feedback: ${slowed[1]}`);
    assert.ok(slowed[1]! > 0.01, 'exploration still tries the slow worker');
    for (let i = 0; i < 10; i++) r.observe(cs[1]!.key, { ttftMs: 100, tokens: 10, decodeMs: 200 });
    assert.ok(shares(r, cs, 2000)[1]! > 0.35, 'recovered worker gets its share back');
  });

  it('sends a prompt back to the worker that holds its prefix', () => {
    const r = router({ exploration: 0 });
    const cs = [candidate('a'), candidate('b'), candidate('c')];
    const prompt = (q: string) => [{ content: 'S'.repeat(2048) }, { content: q }];
    const hint = (q: string): RoutingHint => ({ prefixBlocks: prefixBlockHashes(prompt(q), 512), promptTokens: 600, project: undefined });
    const first = r.choose(cs, hint('one'));
    const again = Array.from({ length: 50 }, (_, i) => r.choose(cs, hint(`q${i}`)));
    assert.ok(again.every((i) => i === first), `prefix affinity: ${again.join(',')}`);
  });

  it('prefix affinity yields to load: a full worker loses the prompt to an idle one', () => {
    const r = router({ exploration: 0 });
    const hint: RoutingHint = { prefixBlocks: ['p1', 'p2'], promptTokens: 600, project: undefined };
    const cs = [candidate('a'), candidate('b')];
    const first = r.choose(cs, hint);
    const loaded = cs.map((c, i) => (i === first ? { ...c, inFlight: 20 } : c));
    assert.equal(r.choose(loaded, hint), 1 - first);
  });

  it('prefers the calling project\'s own worker', () => {
    const r = router({ exploration: 0 });
    const cs = [candidate('shared'), candidate('mine', { owner: 'acme' })];
    const picks = Array.from({ length: 100 }, () => r.choose(cs, { ...NO_HINT, project: 'acme' }));
    assert.ok(picks.every((i) => i === 1));
  });

  it('round-robin cycles and least-loaded takes the lowest occupancy', () => {
    const rr = router({ strategy: 'round-robin' });
    const cs = [candidate('a'), candidate('b', { inFlight: 3 }), candidate('c', { inFlight: 1 })];
    assert.deepEqual(Array.from({ length: 6 }, () => rr.choose(cs, NO_HINT)), [0, 1, 2, 0, 1, 2]);
    const ll = router({ strategy: 'least-loaded' });
    assert.equal(ll.choose([cs[1]!, cs[2]!], NO_HINT), 1);
  });

  it('bounds Free while workers queue, not while they have room', () => {
    const r = router({ freeShare: 0.25 });
    const idle = [candidate('a', { inFlight: 1 }), candidate('b', { inFlight: 2 })];
    for (let i = 0; i < 5; i++) r.admitFree(idle);
    const queued = [candidate('a', { inFlight: 6 }), candidate('b', { inFlight: 4 })];
    assert.throws(() => r.admitFree(queued), (e: { code?: string }) => e.code === 'capacity_exceeded');
    for (let i = 0; i < 4; i++) r.endFree();
    r.admitFree(queued); // 1 running < floor(0.25 × 8) = 2
    assert.throws(() => r.admitFree(queued), (e: { code?: string }) => e.code === 'capacity_exceeded');
  });
});
