import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createVirtualClock } from '../../../../lib/simulator/virtual-clock.js';
import type { Candidate, RoutingHint } from './candidate.js';
import { seededRandom } from './random.js';
import { createRouter } from './router.js';
import { DEFAULT_ROUTING, type RoutingSettings } from './settings.js';

const NO_HINT: RoutingHint = { prefixBlocks: [], promptTokens: 10, project: undefined };
const SLOW_FROM_MS = 2000;
/** How much slower the degraded worker is while degraded. */
const FACTOR = 8;

/**
 * Four workers (two slots each) serving a request every `gapMs` on a virtual clock, requests
 * overlapping as they would in a gateway: first token 50 ms after sending, the last of 10 tokens
 * 300 ms after; the fourth worker is `FACTOR` times slower from `SLOW_FROM_MS` until
 * `recoverAtMs` (a request takes the speed of when it was sent). Returns, in send order, the
 * worker each request went to, from 500 ms into the slowdown until it ended, and after it.
 */
function run(settings: Partial<RoutingSettings>, seed: number, recoverAtMs: number, gapMs = 60): { during: number[]; after: number[] } {
  const keys = ['a', 'b', 'c', 'd'].map((address) => ({ address }));
  const inFlight = [0, 0, 0, 0];
  const clock = createVirtualClock();
  const r = createRouter({ settings: { ...DEFAULT_ROUTING, ...settings }, random: seededRandom(seed), now: clock.now });
  const during: number[] = [];
  const after: number[] = [];
  for (let t = 0; t < recoverAtMs + 4000; t += gapMs) {
    clock.at(t, () => {
      const now = clock.now();
      const cs: Candidate[] = keys.map((key, k) => ({ key, address: key.address, inFlight: inFlight[k]!, capacity: 2, reportedTtftMs: undefined, owner: undefined }));
      const { index: i, dispatch } = r.choose(cs, NO_HINT);
      if (now >= recoverAtMs) after.push(i);
      else if (now >= SLOW_FROM_MS + 500) during.push(i);
      inFlight[i]! += 1;
      const slow = i === 3 && now >= SLOW_FROM_MS && now < recoverAtMs ? FACTOR : 1;
      clock.at(now + 50 * slow, () => (r.firstToken(keys[i]!, dispatch), r.progress(dispatch, 1)));
      clock.at(now + 300 * slow, () => {
        r.progress(dispatch, 9);
        inFlight[i]! -= 1;
        r.ended(keys[i]!, dispatch, true);
      });
    });
  }
  clock.run();
  return { during, after };
}

/** Over seeds and recovery times (the recovery falls anywhere between two probes): the worst case of each. */
function worst(settings: Partial<RoutingSettings>): { firstAfter: number; leastAfter: number; mostDuring: number } {
  let firstAfter = 0;
  let leastAfter = Number.POSITIVE_INFINITY;
  let mostDuring = 0;
  for (let seed = 1; seed <= 5; seed++) {
    for (let recoverAtMs = 5000; recoverAtMs < 7000; recoverAtMs += 100) {
      const { during, after } = run(settings, seed, recoverAtMs);
      const first = after.indexOf(3);
      firstAfter = Math.max(firstAfter, first < 0 ? Number.POSITIVE_INFINITY : first);
      leastAfter = Math.min(leastAfter, after.slice(0, 60).filter((i) => i === 3).length);
      mostDuring = Math.max(mostDuring, during.filter((i) => i === 3).length / during.length);
    }
  }
  return { firstAfter, leastAfter, mostDuring };
}

describe('a degraded worker that recovers', () => {
  it('gets a request within 24 of its recovery and its 5 % of the next 60, and no more than 5 % while slow', () => {
    const w = worst({});
    assert.ok(w.firstAfter <= 24, `first request after recovery: the ${w.firstAfter}th`);
    assert.ok(w.leastAfter >= 3, `least requests in the 60 after recovery: ${w.leastAfter}`);
    assert.ok(w.mostDuring <= 0.05, `largest share while slow: ${w.mostDuring}`);
  });

  it('is probed sooner than with a healthy worker\'s silence, which left it waiting longer', () => {
    const ours = worst({});
    const healthySilence = worst({ probeDegradedAfterRequests: 0 });
    assert.ok(healthySilence.firstAfter > ours.firstAfter, `first request after recovery: ${healthySilence.firstAfter}th with a healthy worker's silence, ${ours.firstAfter}th with its own`);
  });
});
