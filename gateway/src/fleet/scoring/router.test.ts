import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { prefixBlockHashes } from '../../../../lib/chat/prefix-blocks.js';
import type { Candidate, Dispatch, RoutingHint } from './candidate.js';
import { weightedPick } from './pick.js';
import { seededRandom } from './random.js';
import { createRouter, type Router } from './router.js';
import { estimate, NO_FLEET_FIGURES, type Observed, type ScoreWeights } from './score.js';
import { DEFAULT_ROUTING, type RoutingSettings } from './settings.js';

/** Silence by the clock alone (2 s), as the tests of what a silence restarts assume. */
const BY_TIME_2S = { afterRequests: 0, afterMs: 2000, maxMs: 0 };
const NO_HINT: RoutingHint = { prefixBlocks: [], promptTokens: 10, project: undefined };
const W: ScoreWeights = DEFAULT_ROUTING.weights;
const NOTHING: Observed = { lateness: 1, ttftFloorMs: 0, newerKind: undefined, ttftHitMs: undefined, ttftMissMs: undefined, ttftAverageMs: undefined, tokensPerSecond: undefined, tokensPerRequest: undefined, prefixMatched: 0, prefixEvicted: 0, requests: [] };

function candidate(address: string, over: Partial<Candidate> = {}): Candidate {
  return { key: { address }, address, inFlight: 0, capacity: 2, reportedTtftMs: undefined, owner: undefined, ...over };
}

/** A router on a manual clock and a seeded random source. */
function router(over: Partial<RoutingSettings> = {}, seed = 1): { r: Router; clock: { now: number } } {
  const clock = { now: 0 };
  return { r: createRouter({ settings: { ...DEFAULT_ROUTING, ...over }, random: seededRandom(seed), now: () => clock.now }), clock };
}

/**
 * A request the router sent (`dispatch`) served now: its first token `ttftMs` after it was sent,
 * then `tokens` tokens over `decodeMs`; the clock ends at its end.
 */
function serve(r: Router, clock: { now: number }, key: object, dispatch: Dispatch, ttftMs: number, tokens = 10, decodeMs = 100): void {
  clock.now = dispatch.sentAt + ttftMs;
  r.firstToken(key, dispatch);
  r.progress(dispatch, 1);
  clock.now += decodeMs;
  r.progress(dispatch, tokens - 1);
  r.ended(key, dispatch, true);
}

/** Feedback from a request the test made up (not chosen by the router): a TTFT sample taken now, then its decode (the clock moves on by it). */
function feed(r: Router, clock: { now: number }, key: object, f: { ttftMs: number; expectedHit?: boolean; unqueued?: boolean; tokens?: number; decodeMs?: number }): void {
  const dispatch: Dispatch = { sentAt: clock.now - f.ttftMs, expectedMs: 0, unqueued: f.unqueued ?? true, expectedHit: f.expectedHit ?? false, firstAt: undefined, tokens: 0 };
  r.firstToken(key, dispatch);
  r.progress(dispatch, f.tokens ?? 10);
  clock.now += f.decodeMs ?? 100;
  r.ended(key, dispatch, true);
}

/** Sends `n` requests through the router, one at a time, each served with the worker's TTFT; returns the shares. */
function traffic(r: Router, clock: { now: number }, cs: Candidate[], ttft: (i: number) => number, n: number, hint = NO_HINT): number[] {
  const counts = cs.map(() => 0);
  for (let k = 0; k < n; k++) {
    const { index, dispatch } = r.choose(cs, hint);
    counts[index]! += 1;
    serve(r, clock, cs[index]!.key, dispatch, ttft(index), 10, 10);
    clock.now += 10;
  }
  return counts.map((c) => c / n);
}

describe('scorer estimate (expected TTFT, ms)', () => {
  it('an idle worker costs its recent prefill; a full one adds the wait for a slot', () => {
    const seen: Observed = { ...NOTHING, ttftMissMs: 100, ttftAverageMs: 100, tokensPerSecond: 100, tokensPerRequest: 20 };
    const w = { ...W, throughput: 1 };
    assert.equal(estimate(candidate('a'), seen, NO_HINT, w).cost, 100);
    // 3 in flight on 2 slots: 2 ahead of a slot × (100 ms TTFT + 200 ms decode) ÷ 2 slots.
    const full = estimate(candidate('a', { inFlight: 3 }), seen, NO_HINT, w);
    assert.deepEqual([full.prefillMs, full.waitMs, full.cost], [100, 300, 400]);
    // The decode part counts by the throughput weight.
    assert.equal(estimate(candidate('a', { inFlight: 3 }), seen, NO_HINT, { ...w, throughput: 0.5 }).waitMs, 200);
  });

  it('a remembered prefix selects the hit TTFT, weighted by the share of blocks held', () => {
    const seen: Observed = { ...NOTHING, ttftMissMs: 400, ttftHitMs: 40, prefixMatched: 3 };
    const hint = { prefixBlocks: ['a', 'b', 'c', 'd'], promptTokens: 600, project: undefined };
    assert.equal(estimate(candidate('a'), seen, hint, W).prefillMs, 0.75 * 40 + 0.25 * 400);
    assert.equal(estimate(candidate('a'), seen, hint, { ...W, prefix: 0 }).prefillMs, 400);
  });

  it('the older of the hit and miss figures is taken no lower than the newer one implies', () => {
    const fleet = { ...NO_FLEET_FIGURES, missOverHit: 10 };
    // Its miss figure predates a slowdown that its cached prompts since have shown (200 ms hits).
    const slowed: Observed = { ...NOTHING, ttftMissMs: 300, ttftHitMs: 200, newerKind: 'hit' };
    assert.equal(estimate(candidate('a'), slowed, NO_HINT, W, fleet).prefillMs, 2000);
    // The miss figure is the newer one: it stands (and the hit figure is no lower than 300 ÷ 10).
    assert.equal(estimate(candidate('a'), { ...slowed, newerKind: 'miss' }, NO_HINT, W, fleet).prefillMs, 300);
  });

  it('a request late for its first token slows the whole estimate by its lateness', () => {
    const seen: Observed = { ...NOTHING, ttftMissMs: 100, ttftAverageMs: 100, lateness: 5 };
    // Both slots taken by requests not decoding yet: the first frees up after a whole slot time.
    const e = estimate(candidate('a', { inFlight: 2 }), seen, NO_HINT, W);
    assert.deepEqual([e.prefillMs, e.waitMs], [500, 500]);
  });

  it('a full worker\'s wait counts its decoding requests\' remaining tokens at their live pace', () => {
    // 100 ms to the first token, 100 tokens/s (a 10 ms gap), 20 tokens per answer: a slot is 300 ms.
    const known: Observed = { ...NOTHING, ttftMissMs: 100, ttftAverageMs: 100, tokensPerSecond: 100, tokensPerRequest: 20 };
    // On pace: 10 tokens in 90 ms (10 left, 100 ms) and 5 in 40 ms (15 left, 150 ms).
    const onPace: Observed = { ...known, requests: [{ decodingMs: 90, tokens: 10, expectedHit: false }, { decodingMs: 40, tokens: 5, expectedHit: false }] };
    assert.equal(estimate(candidate('a', { inFlight: 2 }), onPace, NO_HINT, W).waitMs, 100, 'the first slot to free up');
    // One more queued: it takes the slot free at 100 ms until 400; the other frees up at 150.
    assert.equal(estimate(candidate('a', { inFlight: 3 }), onPace, NO_HINT, W).waitMs, 150);
    // The same tokens 8× slower (80 ms a token): the slots free up 8× later, before any answer ends.
    const slowed: Observed = { ...known, requests: [{ decodingMs: 790, tokens: 10, expectedHit: false }, { decodingMs: 390, tokens: 5, expectedHit: false }] };
    assert.equal(estimate(candidate('a', { inFlight: 2 }), slowed, NO_HINT, W).waitMs, 800);
    // Requests it has no record of (or not decoding yet) hold a whole slot each, as before.
    assert.equal(estimate(candidate('a', { inFlight: 3 }), known, NO_HINT, W).waitMs, 300);
  });

  it('a queued request expected to miss the prefix cache holds its slot for a miss, one expected to hit for a hit', () => {
    // 20 ms to the first token on a hit, 200 on a miss; 100 tokens/s, 20 tokens per answer (200 ms of decode).
    const known: Observed = { ...NOTHING, ttftHitMs: 20, ttftMissMs: 200, ttftAverageMs: 110, tokensPerSecond: 100, tokensPerRequest: 20 };
    // Two decoding on pace (their slots free up at 100 and 150 ms), two more waiting for a slot.
    const decoding = [{ decodingMs: 90, tokens: 10, expectedHit: false }, { decodingMs: 40, tokens: 5, expectedHit: false }];
    const waiting = (expectedHit: boolean) => ({ decodingMs: undefined, tokens: 0, expectedHit });
    const misses: Observed = { ...known, requests: [...decoding, waiting(false), waiting(false)] };
    const hits: Observed = { ...known, requests: [...decoding, waiting(true), waiting(true)] };
    // Misses hold a slot 400 ms each (100 → 500, 150 → 550); hits 220 ms (100 → 320, 150 → 370).
    assert.equal(estimate(candidate('a', { inFlight: 4 }), misses, NO_HINT, W).waitMs, 500);
    assert.equal(estimate(candidate('a', { inFlight: 4 }), hits, NO_HINT, W).waitMs, 320);
  });

  it('before a worker has finished an answer, its queue counts the decode at the live pace of its answers', () => {
    // Known for its first token only (100 ms); one answer 10 tokens in (9 gaps in 180 ms: 50 tokens/s), the other not started.
    const firstOnly: Observed = { ...NOTHING, ttftMissMs: 100, ttftAverageMs: 100, requests: [{ decodingMs: 180, tokens: 10, expectedHit: false }, { decodingMs: undefined, tokens: 0, expectedHit: false }] };
    const fleet = { ...NO_FLEET_FIGURES, tokensPerRequest: 20 };
    // The decoding one ends after 10 more tokens at 20 ms (200 ms); the other holds its slot for
    // 100 + 20 × 20 = 500 ms: a third request waits for the first to end, and a fourth for the
    // first slot to free up again (200 + 500 = 700 ms, after the other's 500).
    assert.equal(estimate(candidate('a', { inFlight: 2 }), firstOnly, NO_HINT, W, fleet).waitMs, 200);
    assert.equal(estimate(candidate('a', { inFlight: 3 }), firstOnly, NO_HINT, W, fleet).waitMs, 500);
    // Without the live pace (nothing decoding yet), the decode part is unknown: the first token alone.
    const noPace: Observed = { ...firstOnly, requests: [{ decodingMs: undefined, tokens: 0, expectedHit: false }, { decodingMs: undefined, tokens: 0, expectedHit: false }] };
    assert.equal(estimate(candidate('a', { inFlight: 2 }), noPace, NO_HINT, W, fleet).waitMs, 100);
  });

  it('the calling project\'s own worker is discounted by the owner weight', () => {
    const seen: Observed = { ...NOTHING, ttftMissMs: 100 };
    assert.equal(estimate(candidate('a', { owner: 'acme' }), seen, { ...NO_HINT, project: 'acme' }, W).cost, 100 * (1 - W.owner));
    assert.equal(estimate(candidate('a', { owner: 'acme' }), seen, { ...NO_HINT, project: 'other' }, W).cost, 100);
  });

  it('without feedback: the worker\'s own report, and the fallback slot time for its queue', () => {
    const e = estimate(candidate('a', { inFlight: 2, reportedTtftMs: 80 }), NOTHING, NO_HINT, W, { ...NO_FLEET_FIGURES, slotMs: 600 });
    assert.deepEqual([e.prefillMs, e.waitMs], [80, 600]);
  });
});

describe('weighted pick', () => {
  const never = [Infinity, Infinity, Infinity].map(() => 0);

  it('is deterministic for a seed and picks only within the band, favouring the cheapest', () => {
    const picks = (seed: number): number[] => {
      const r = seededRandom(seed);
      return Array.from({ length: 2000 }, () => weightedPick([100, 124, 300], never, r, { exploration: 0, band: 0.25 }));
    };
    const a = picks(7);
    assert.deepEqual(a, picks(7));
    assert.ok(!a.includes(2), 'a candidate outside the band is never picked');
    assert.ok(a.includes(1), 'a near-tie shares the traffic');
    // Weighted 1 / (cost + 1): 0.55 and 0.45.
    const share = a.filter((i) => i === 0).length / a.length;
    assert.ok(share > 0.5 && share < 0.6, `the cheapest is the most likely: ${share}`);
  });

  it('explores only workers not heard from (silence level ≥ 1)', () => {
    const r = seededRandom(3);
    const opts = { exploration: 0.1, band: 0 };
    const fresh = Array.from({ length: 1000 }, () => weightedPick([100, 900], [0.5, 0.99], r, opts));
    assert.ok(!fresh.includes(1), 'no exploration while every worker is fresh');
    const stale = Array.from({ length: 1000 }, () => weightedPick([100, 900], [0.5, 1], r, opts));
    const share = stale.filter((i) => i === 1).length / 1000;
    assert.ok(share > 0.06 && share < 0.14, `explored share ${share}`);
  });
});

describe('router', () => {
  it('feedback moves traffic away from a worker that became slow, and back after it recovers', () => {
    const { r, clock } = router();
    const cs = [candidate('a'), candidate('b')];
    const before = traffic(r, clock, cs, () => 100, 400);
    assert.ok(before[1]! > 0.3, `equal workers share: ${before.join(', ')}`);
    const slowed = traffic(r, clock, cs, (i) => (i === 1 ? 800 : 100), 400);
    assert.ok(slowed[1]! < 0.1, `slow worker's share after feedback: ${slowed[1]}`);
    assert.ok(slowed[1]! > 0, 'exploration still tries the slow worker now and then');
    const recovered = traffic(r, clock, cs, () => 100, 800);
    assert.ok(recovered[1]! > 0.25, `a recovered worker gets its share back: ${recovered[1]}`);
  });

  it('a request late for its first token diverts traffic before any request ends', () => {
    const { r, clock } = router({ exploration: 0 });
    const cs = [candidate('a'), candidate('b')];
    traffic(r, clock, cs, () => 100, 50);
    // One request goes to each worker; b's is still unanswered 1 s later, a's came back.
    const first = r.choose(cs, NO_HINT);
    const other = 1 - first.index;
    const second = r.choose(cs, NO_HINT);
    assert.equal(second.index, other, 'the load spreads the two requests');
    serve(r, clock, cs[first.index]!.key, first.dispatch, 100);
    clock.now += 1000;
    const next = Array.from({ length: 20 }, () => {
      const c = r.choose(cs, NO_HINT);
      serve(r, clock, cs[c.index]!.key, c.dispatch, 100);
      return c.index;
    });
    assert.ok(next.every((i) => i === first.index), `traffic while one request is late: ${next.join(',')}`);
  });

  it('takes the TTFT sample at the first token, once, and the decode rate at a completed end', () => {
    const { r, clock } = router({ exploration: 0 });
    const a = candidate('a');
    const c = r.choose([a], NO_HINT);
    clock.now += 120;
    r.firstToken(a.key, c.dispatch);
    r.firstToken(a.key, c.dispatch);
    r.progress(c.dispatch, 1);
    assert.deepEqual([r.view(a.key).ttftMs, r.view(a.key).samples, r.view(a.key).tokensPerSecond], [120, 1, undefined], 'known before the request ends');
    clock.now += 900;
    r.progress(c.dispatch, 9);
    r.ended(a.key, c.dispatch, true);
    assert.deepEqual([r.view(a.key).ttftMs, r.view(a.key).samples, r.view(a.key).tokensPerSecond], [120, 1, 10], 'the end adds no TTFT sample; 9 tokens after the first in 900 ms');
    // An abandoned request teaches no decode rate.
    const d = r.choose([a], NO_HINT);
    clock.now += 100;
    r.firstToken(a.key, d.dispatch);
    r.progress(d.dispatch, 2);
    clock.now += 1000;
    r.ended(a.key, d.dispatch, false);
    assert.equal(r.view(a.key).tokensPerSecond, 10);
  });

  it('a request whose tokens come slower than the worker\'s rate diverts traffic before it ends', () => {
    // The scorer alone: the share floor (share-floor.test.ts) would hand b its share of the 20.
    const { r, clock } = router({ exploration: 0, minShare: 0 });
    const [a, b] = [candidate('a'), candidate('b')];
    // Both known: 100 ms to the first token, then 100 tokens/s.
    for (const k of [a.key, b.key]) feed(r, clock, k, { ttftMs: 100, tokens: 11, decodeMs: 100 });
    const onB = r.choose([b], NO_HINT);
    clock.now += 100;
    r.firstToken(b.key, onB.dispatch);
    r.progress(onB.dispatch, 1);
    // Keeping pace (50 tokens in 500 ms): b is scored as before.
    clock.now += 500;
    r.progress(onB.dispatch, 50);
    assert.equal(r.estimate(b, NO_HINT).cost, r.estimate(a, NO_HINT).cost);
    // Then nothing for 500 ms (the next token was due 10 ms after the last): b is slower now.
    clock.now += 500;
    assert.ok(r.estimate(b, NO_HINT).cost > 1.5 * r.estimate(a, NO_HINT).cost, `${r.estimate(b, NO_HINT).cost} vs ${r.estimate(a, NO_HINT).cost}`);
    const picks = Array.from({ length: 20 }, () => r.choose([a, b], NO_HINT).index);
    assert.ok(picks.every((i) => i === 0), `traffic while b's tokens stall: ${picks.join(',')}`);
  });

  it('of two full workers, the one whose answers are nearly done gets the request', () => {
    const { r, clock } = router({ exploration: 0 });
    const [a, b] = [candidate('a', { inFlight: 2 }), candidate('b', { inFlight: 2 })];
    // Both known: 100 ms to the first token, then 100 tokens/s, 21 tokens per answer.
    for (const k of [a.key, b.key]) feed(r, clock, k, { ttftMs: 100, tokens: 21, decodeMs: 200 });
    // Two requests on each, all on pace: a's began 180 ms ago (19 tokens), b's just now (1 token).
    const begin = (c: Candidate, sinceMs: number, tokens: number): void => {
      for (let i = 0; i < 2; i++) {
        const d = r.choose([c], NO_HINT).dispatch;
        d.sentAt -= sinceMs + 100;
        d.firstAt = clock.now - sinceMs;
        r.progress(d, tokens);
      }
    };
    begin(a, 180, 19);
    begin(b, 0, 1);
    const [ea, eb] = r.estimates([a, b], NO_HINT);
    assert.ok(ea!.waitMs < 0.2 * eb!.waitMs, `a's slot frees up in ${ea!.waitMs} ms, b's in ${eb!.waitMs} ms`);
    assert.equal(r.choose([a, b], NO_HINT).index, 0);
  });

  it('a worker whose token rate is not known yet still shows its stalled answers in its queue', () => {
    const { r, clock } = router({ exploration: 0, silence: BY_TIME_2S });
    const [a, b] = [candidate('a', { inFlight: 2 }), candidate('b', { inFlight: 2 })];
    // b has not finished an answer yet (a TTFT from its first tokens, no token rate); its two
    // answers have relayed 3 tokens in 1 s since their first. a is known, its answers on pace.
    feed(r, clock, a.key, { ttftMs: 100, tokens: 11, decodeMs: 100 });
    for (const [c, sinceMs, tokens] of [[b, 1000, 3], [b, 1000, 3], [a, 50, 6], [a, 50, 6]] as const) {
      const d = r.choose([c], NO_HINT).dispatch;
      d.sentAt = clock.now - sinceMs - 100;
      r.firstToken(c.key, d);
      d.firstAt = clock.now - sinceMs;
      r.progress(d, tokens);
    }
    assert.equal(r.view(b.key).tokensPerSecond, undefined);
    const [ea, eb] = r.estimates([a, b], NO_HINT);
    // 8 tokens left (the fleet's answer length, 11, less 3) at 500 ms each.
    assert.equal(eb!.waitMs, 4000);
    assert.ok(ea!.cost < eb!.cost, `a ${ea!.cost} ms, b ${eb!.cost} ms`);
    assert.equal(r.choose([a, b], NO_HINT).index, 0);
  });

  it('cold start: a worker that has not answered its first request is not sent a second one over one that has', () => {
    const { r, clock } = router({ exploration: 0 });
    const [a, b] = [candidate('a'), candidate('b')];
    // Nothing known yet: the first request goes to one of them, the second to the other.
    const first = r.choose([a, b], NO_HINT);
    const second = r.choose([a, b], NO_HINT);
    assert.notEqual(first.index, second.index);
    const [silent, answering] = first.index === 0 ? [first, second] : [second, first];
    // One answers in 100 ms; the other has not answered after 300 ms.
    serve(r, clock, b.key, answering.dispatch, 100, 2, 10);
    clock.now = 300;
    assert.equal(r.estimates([a, b], NO_HINT)[0]!.prefillMs, 300 + 100, 'waited so far + the fleet\'s TTFT');
    const picks = Array.from({ length: 10 }, () => {
      const c = r.choose([a, b], NO_HINT);
      serve(r, clock, [a, b][c.index]!.key, c.dispatch, 100, 2, 10);
      return c.index;
    });
    assert.ok(picks.every((i) => i === 1), `while a is silent: ${picks.join(',')}`);
    // Its first token arrives: a is known and back in the running.
    clock.now += 1;
    r.firstToken(a.key, silent.dispatch);
    assert.ok(r.view(a.key).ttftMs !== undefined);
  });

  it('sends a prompt back to the worker that holds its prefix', () => {
    // The scorer alone: no share floor (share-floor.test.ts) sending the others their 5 %.
    const { r, clock } = router({ exploration: 0, minShare: 0 });
    const cs = [candidate('a'), candidate('b'), candidate('c')];
    const prompt = (q: string) => [{ content: 'S'.repeat(2048) }, { content: q }];
    const hint = (q: string): RoutingHint => ({ prefixBlocks: prefixBlockHashes(prompt(q), 512), promptTokens: 600, project: undefined });
    // Every worker known: 300 ms for a new prefix, 30 ms for a remembered one.
    for (const c of cs) {
      for (const expectedHit of [true, false]) {
        feed(r, clock, c.key, { ttftMs: expectedHit ? 30 : 300, expectedHit });
      }
    }
    const first = r.choose(cs, hint('one'));
    serve(r, clock, cs[first.index]!.key, first.dispatch, 300);
    const again = Array.from({ length: 30 }, (_, i) => {
      clock.now += 1;
      const c = r.choose(cs, hint(`q${i}`));
      serve(r, clock, cs[c.index]!.key, c.dispatch, 30);
      return c.index;
    });
    assert.ok(again.every((i) => i === first.index), `prefix affinity: ${again.join(',')}`);
    assert.equal(r.choose(cs, hint('x')).dispatch.expectedHit, true);
    // ... until that worker's queue costs more than a prefill elsewhere.
    const loaded = cs.map((c, i) => (i === first.index ? { ...c, inFlight: 8 } : c));
    assert.notEqual(r.choose(loaded, hint('y')).index, first.index);
  });

  it('a worker heard from again after a silence keeps a figure even if that request queued', () => {
    const { r, clock } = router({ exploration: 0, silence: BY_TIME_2S });
    const [a, b] = [candidate('a'), candidate('b')];
    const sample = (unqueued: boolean, ttftMs: number) => ({ ttftMs, unqueued });
    feed(r, clock, a.key, sample(true, 100));
    feed(r, clock, b.key, sample(true, 100));
    clock.now += 5000;
    // b answers again after 5 s of silence, slowly, from behind its queue: what it did 5 s ago
    // is forgotten, but the slow answer is kept (it is the only figure now), not dropped (which
    // would score b like a new worker: first in line).
    feed(r, clock, b.key, sample(false, 3000));
    feed(r, clock, a.key, sample(true, 100));
    assert.equal(r.view(b.key).ttftMs, 3000);
    assert.ok(r.estimate(b, NO_HINT).cost > r.estimate(a, NO_HINT).cost, 'the slow worker costs more than the fast one');
    // An unqueued answer corrects the pessimistic figure at once.
    feed(r, clock, b.key, sample(true, 100));
    assert.ok(r.view(b.key).ttftMs! < 3000 && r.view(b.key).ttftMs! >= 100, `after an unqueued sample: ${r.view(b.key).ttftMs}`);
  });

  it('after a silence (no traffic between bursts) a worker keeps its answer length and token rate for its queue', () => {
    const { r, clock } = router({ exploration: 0, silence: BY_TIME_2S });
    const b = candidate('b', { inFlight: 4 });
    // A slow decoder: 21-token answers at 10 tokens/s (2 s on a slot after a 100 ms first token).
    feed(r, clock, b.key, { ttftMs: 100, tokens: 21, decodeMs: 2000 });
    clock.now += 5000;
    // The next burst: its first answer's first token, 100 ms after it was sent; it has not ended.
    const d: Dispatch = { sentAt: clock.now - 100, expectedMs: 0, unqueued: true, expectedHit: false, firstAt: undefined, tokens: 0 };
    r.firstToken(b.key, d);
    assert.equal(r.view(b.key).ttftMs, 100);
    assert.equal(r.view(b.key).tokensPerSecond, 10);
    // 4 in flight on 2 slots: the 3rd and 4th wait for two slot times of 100 + 21 × 100 ms each;
    // forgetting the token rate would count 100 ms (the first token alone) per slot time.
    assert.equal(r.estimate(b, NO_HINT).waitMs, 2 * 2200);
    // The decode rate is then measured afresh: the burst's first end replaces it.
    clock.now += 1000;
    r.progress(d, 21);
    r.ended(b.key, d, true);
    assert.equal(r.view(b.key).tokensPerSecond, 20);
  });

  it('after a silence a sample starts over only its own kind: the other kind keeps its figure', () => {
    const { r, clock } = router({ exploration: 0, silence: BY_TIME_2S });
    const [a, b] = [candidate('a'), candidate('b')];
    // a misses in 10× its hit time; b, as fast on hits, prefills 100× slower than it hits.
    feed(r, clock, a.key, { ttftMs: 30, expectedHit: true });
    feed(r, clock, a.key, { ttftMs: 300, expectedHit: false });
    feed(r, clock, b.key, { ttftMs: 30, expectedHit: true });
    feed(r, clock, b.key, { ttftMs: 3000, expectedHit: false });
    clock.now += 5000;
    // The next burst's first answer from b is a cache hit, as fast as before: its miss figure
    // still stands (forgetting it would derive one from the hit at the fleet's miss/hit ratio,
    // well below what b's misses take).
    feed(r, clock, b.key, { ttftMs: 30, expectedHit: true });
    assert.equal(r.view(b.key).ttftMs, 30);
    assert.equal(r.estimate(b, NO_HINT).prefillMs, 3000);
    assert.ok(r.estimate(b, NO_HINT).cost > r.estimate(a, NO_HINT).cost);
  });

  it('a silence is counted in requests the worker missed, not in time: a pause in the traffic is none', () => {
    const { r, clock } = router({ exploration: 0, band: 0, minShare: 0, silence: { afterRequests: 4, afterMs: 0, maxMs: 30_000 } });
    const [a, b] = [candidate('a'), candidate('b')];
    feed(r, clock, a.key, { ttftMs: 50 });
    feed(r, clock, b.key, { ttftMs: 100 });
    // 10 s without any traffic (longer than any answer here), then b answers from behind a queue:
    // nothing was sent elsewhere meanwhile, so b was not avoided and its figure stands (a queued
    // sample above it is only an upper bound).
    clock.now += 10_000;
    feed(r, clock, b.key, { ttftMs: 3000, unqueued: false });
    assert.equal(r.view(b.key).ttftMs, 100);
    // Now four requests b could have served go to a: b has not been heard from, and its next
    // sample starts its figure over.
    for (let k = 0; k < 4; k++) {
      const { index, dispatch } = r.choose([a, b], NO_HINT);
      assert.equal(index, 0);
      serve(r, clock, a.key, dispatch, 50);
    }
    feed(r, clock, b.key, { ttftMs: 3000, unqueued: false });
    assert.equal(r.view(b.key).ttftMs, 3000);
  });

  it('exploration probes a worker once it missed enough requests, not after a pause in the traffic', () => {
    const { r, clock } = router({ exploration: 1, band: 0, minShare: 0, silence: { afterRequests: 3, afterMs: 0, maxMs: 30_000 } });
    const [a, b] = [candidate('a'), candidate('b')];
    feed(r, clock, a.key, { ttftMs: 50 });
    feed(r, clock, b.key, { ttftMs: 500 });
    clock.now += 20_000;
    const picks: number[] = [];
    for (let k = 0; k < 5; k++) {
      const { index, dispatch } = r.choose([a, b], NO_HINT);
      picks.push(index);
      serve(r, clock, [a, b][index]!.key, dispatch, index === 0 ? 50 : 500);
    }
    // After 20 s of no traffic b is not probed; after it missed three requests it is, once (its
    // answer is feedback: it is heard from again).
    assert.deepEqual(picks, [0, 0, 0, 1, 0]);
    // The clock alone, past the ceiling, makes it silent too.
    clock.now += 30_000;
    assert.equal(r.choose([a, b], NO_HINT).index, 1);
  });

  it('with probeAfterPauseMs, a worker slower than it has been is probed by the first request after a pause in all traffic', () => {
    const run = (probeAfterPauseMs: number): { picks: number[]; ttftAfterProbeMs: number | undefined } => {
      const { r, clock } = router({ exploration: 1, band: 0, minShare: 0, probeAfterPauseMs });
      const [a, b] = [candidate('a'), candidate('b')];
      feed(r, clock, a.key, { ttftMs: 100 });
      feed(r, clock, b.key, { ttftMs: 100 });
      // b slows down: its figure 550 ms, over twice the best it has shown.
      feed(r, clock, b.key, { ttftMs: 1000 });
      const picks: number[] = [];
      const send = (ttftMs: (i: number) => number): void => {
        const { index, dispatch } = r.choose([a, b], NO_HINT);
        picks.push(index);
        serve(r, clock, [a, b][index]!.key, dispatch, ttftMs(index));
      };
      send(() => 100);
      clock.now += 10_000;
      // b has recovered during the pause (100 ms again).
      send(() => 100);
      const ttftAfterProbeMs = r.view(b.key).ttftMs;
      send(() => 100);
      return { picks, ttftAfterProbeMs };
    };
    // Off (the default): a pause is no silence, b missed one request, it is not probed.
    assert.deepEqual(run(0).picks, [0, 0, 0]);
    // On: the first request after the 10 s pause probes b; its answer starts its figures over
    // (100 ms, not the average with its slow 550 ms), so it is back in the band at once.
    const on = run(5000);
    assert.deepEqual(on.picks.slice(0, 2), [0, 1]);
    assert.equal(on.ttftAfterProbeMs, 100);
    // A pause shorter than the setting changes nothing.
    assert.deepEqual(run(20_000).picks, [0, 0, 0]);
  });

  it('with probeAfterPauseMs, a healthy worker is not probed after a pause, and a degraded one once per pause', () => {
    const { r, clock } = router({ exploration: 1, band: 0, minShare: 0, probeAfterPauseMs: 5000 });
    const [a, b] = [candidate('a'), candidate('b')];
    feed(r, clock, a.key, { ttftMs: 100 });
    feed(r, clock, b.key, { ttftMs: 300 });
    const send = (): number => {
      const { index, dispatch } = r.choose([a, b], NO_HINT);
      serve(r, clock, [a, b][index]!.key, dispatch, 100);
      return index;
    };
    send();
    clock.now += 10_000;
    // b is slower than a by nature, not slower than it has been: no probe.
    assert.equal(send(), 0);
    feed(r, clock, b.key, { ttftMs: 3000 });
    clock.now += 10_000;
    // Now degraded: probed once; while that probe has not answered, not again.
    assert.equal(r.choose([a, b], NO_HINT).index, 1);
    assert.equal(r.choose([a, b], NO_HINT).index, 0);
  });

  it('probes a stale worker only on a free slot, and with a prefix prompt only where it is cached', () => {
    const { r, clock } = router({ exploration: 1, silence: { afterRequests: 0, afterMs: 1000, maxMs: 0 } });
    const prompt = (p: string, q: string) => [{ content: p.repeat(2048) }, { content: q }];
    const hint = (p: string, q: string): RoutingHint => ({ prefixBlocks: prefixBlockHashes(prompt(p, q), 512), promptTokens: 600, project: undefined });
    const fast = candidate('fast');
    const slow = candidate('slow');
    // The slow worker served prefix S once, then nothing: it is stale once 1 s has passed.
    const onSlow = r.choose([slow], hint('S', 'first'));
    serve(r, clock, slow.key, onSlow.dispatch, 2000, 10, 1000);
    for (const expectedHit of [true, false]) feed(r, clock, fast.key, { ttftMs: 50, expectedHit });
    clock.now += 1500;
    const keepFresh = () => feed(r, clock, fast.key, { ttftMs: 50 });
    keepFresh();
    // A prompt the slow worker does not hold is not a probe (its miss there is the expensive case).
    assert.equal(r.choose([fast, slow], hint('T', 'q1')).index, 0);
    // Its slots all taken: no probe either, even with its prefix.
    assert.equal(r.choose([fast, { ...slow, inFlight: 2 }], hint('S', 'q2')).index, 0);
    // A free slot and its prefix: probed.
    assert.equal(r.choose([fast, slow], hint('S', 'q3')).index, 1);
    // One probe per probe interval: the next prompt of S goes to the fast worker again.
    keepFresh();
    assert.equal(r.choose([fast, slow], hint('S', 'q4')).index, 0);
    // After twice the interval without a cheap prompt for it, any prompt probes it.
    clock.now += 2000;
    keepFresh();
    assert.equal(r.choose([fast, slow], hint('T', 'q5')).index, 1);
  });

  it('a prompt whose prefix no worker holds goes where it evicts no other prefix, unless that costs more than the later misses', () => {
    const prompt = (p: string): RoutingHint => ({ prefixBlocks: prefixBlockHashes([{ content: p.repeat(1024) }, { content: '?' }], 512), promptTokens: 300, project: undefined });
    const run = (eviction: number): number => {
      // Memories of 4 blocks; every prompt here has 2 prefix blocks.
      const { r, clock } = router({ exploration: 0, band: 0, prefixMemoryBlocks: 4, weights: { ...W, eviction } });
      const [a, b] = [candidate('a'), candidate('b')];
      // a is slightly faster on a miss (490 vs 500 ms; both hit in 50 ms) but holds two
      // prefixes (full); b holds one.
      for (const [c, miss] of [[a, 490], [b, 500]] as const) {
        feed(r, clock, c.key, { ttftMs: 50, expectedHit: true });
        feed(r, clock, c.key, { ttftMs: miss, expectedHit: false });
      }
      // Each new prefix there is a miss, at the worker's miss time.
      for (const [c, p, miss] of [[a, 'P', 490], [a, 'Q', 490], [b, 'P', 500]] as const) {
        const { dispatch } = r.choose([c], prompt(p));
        serve(r, clock, c.key, dispatch, miss);
      }
      const e = r.estimate(a, prompt('R'));
      // R on a evicts 2 blocks at (490 − 50) ms per block of a 2-block prompt.
      assert.equal(e.evictionMs, eviction * 2 * (490 - 50) / 2);
      assert.equal(r.estimate(b, prompt('R')).evictionMs, 0);
      return r.choose([a, b], prompt('R')).index;
    };
    assert.equal(run(0), 0, 'without the charge: the fastest miss');
    assert.equal(run(1), 1, 'with it: the worker with room');
  });

  it('a worker known only for cache hits is not expected to answer a miss as fast as a hit', () => {
    const { r, clock } = router({ exploration: 0 });
    const [known, hitsOnly] = [candidate('known'), candidate('hits-only')];
    const sample = (expectedHit: boolean, ttftMs: number) => ({ ttftMs, expectedHit });
    // The known worker: 50 ms for a cached prefix, 500 ms without (10×).
    feed(r, clock, known.key, sample(true, 50));
    feed(r, clock, known.key, sample(false, 500));
    // The other has only ever been sent cached prompts: 40 ms.
    feed(r, clock, hitsOnly.key, sample(true, 40));
    // A prompt neither holds: the hits-only worker's miss is estimated at 40 ms × 10, not 40 ms.
    assert.equal(r.estimate(hitsOnly, NO_HINT).prefillMs, 400);
    assert.equal(r.choose([known, hitsOnly], NO_HINT).index, 1, 'still the faster one, by its estimated miss');
    feed(r, clock, known.key, sample(false, 300));
    assert.ok(r.estimate(hitsOnly, NO_HINT).prefillMs > 40, 'a miss is never estimated at its hit figure');
  });

  it('round-robin cycles and least-loaded takes the lowest occupancy', () => {
    const cs = [candidate('a'), candidate('b', { inFlight: 3 }), candidate('c', { inFlight: 1 })];
    const rr = router({ strategy: 'round-robin' }).r;
    assert.deepEqual(Array.from({ length: 6 }, () => rr.choose(cs, NO_HINT).index), [0, 1, 2, 0, 1, 2]);
    const ll = router({ strategy: 'least-loaded' }).r;
    assert.equal(ll.choose([cs[1]!, cs[2]!], NO_HINT).index, 1);
  });

  it('bounds Free while workers queue, not while they have room', () => {
    const { r } = router({ freeShare: 0.25 });
    const cs = (a: number, b: number) => [candidate('a', { inFlight: a, capacity: 4 }), candidate('b', { inFlight: b, capacity: 4 })];
    for (let i = 0; i < 5; i++) r.admitFree(cs(1, 2));
    assert.throws(() => r.admitFree(cs(6, 4)), (e: { code?: string }) => e.code === 'capacity_exceeded');
    for (let i = 0; i < 4; i++) r.endFree();
    r.admitFree(cs(6, 4)); // 1 running < floor(0.25 × 8 slots) = 2
    assert.throws(() => r.admitFree(cs(6, 4)), (e: { code?: string }) => e.code === 'capacity_exceeded');
  });
});
