import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createVirtualClock } from './virtual-clock.js';

describe('virtual clock', () => {
  it('runs callbacks in time order, equal times in the order scheduled, including those scheduled while running', () => {
    const clock = createVirtualClock();
    const seen: string[] = [];
    const note = (name: string) => () => void seen.push(`${name}@${clock.now()}`);
    clock.at(30, note('c'));
    clock.at(10, () => {
      note('a')();
      clock.at(20, note('b'));
      clock.at(30, note('d'));
    });
    clock.at(30, note('c2'));
    clock.run();
    assert.deepEqual(seen, ['a@10', 'b@20', 'c@30', 'c2@30', 'd@30']);
    assert.equal(clock.now(), 30);
  });
});
