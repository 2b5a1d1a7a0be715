import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createPrefixMemory } from './prefix-blocks.js';

describe('prefix memory', () => {
  it('counts the blocks recording a prompt would evict, without evicting them', () => {
    const m = createPrefixMemory(4);
    m.record(['p1', 'p2']);
    m.record(['q1', 'q2']);
    assert.equal(m.evictions(['p1', 'p2']), 0, 'a held prompt evicts nothing');
    assert.equal(m.evictions(['p1', 'r2']), 1, 'one new block, memory full: one goes');
    assert.equal(m.evictions(['r1', 'r2', 'r3']), 3);
    assert.equal(m.evictions(['r1', 'r2', 'r3', 'r4', 'r5']), 4, 'never more than it holds');
    assert.equal(m.size, 4);
    assert.equal(m.peek(['p1', 'p2']), 2, 'counting changed nothing');
    // What record then does: the least recently used go (p1, p2).
    m.record(['r1', 'r2']);
    assert.deepEqual([m.peek(['p1']), m.peek(['q1', 'q2']), m.peek(['r1', 'r2'])], [0, 2, 2]);
  });

  it('a memory with room, or of size 0, evicts nothing', () => {
    const m = createPrefixMemory(8);
    m.record(['p1', 'p2']);
    assert.equal(m.evictions(['q1', 'q2', 'q3']), 0);
    assert.equal(createPrefixMemory(0).evictions(['a']), 0);
  });
});
