import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createReasoningSplitter } from './reasoning.js';

function split(pieces: string[]): { reasoning: string; content: string } {
  const s = createReasoningSplitter();
  const out = { reasoning: '', content: '' };
  for (const p of [...pieces.map((x) => s.push(x)), s.end()]) {
    out.reasoning += p.reasoning;
    out.content += p.content;
  }
  return out;
}

describe('reasoning splitter', () => {
  it('sends <think> text to reasoning and the rest to content, whatever the piece boundaries', () => {
    const text = '<think>Let me see: 2+2.</think>\n\nIt is 4.';
    const expected = { reasoning: 'Let me see: 2+2.', content: 'It is 4.' };
    assert.deepEqual(split([text]), expected);
    assert.deepEqual(split([...text]), expected, 'one character at a time');
    assert.deepEqual(split(['<th', 'ink>Let me see: 2+2.</thi', 'nk>\n', '\nIt is 4.']), expected);
  });
  it('leaves text without a leading <think> alone, also a later <think>', () => {
    assert.deepEqual(split(['Hello <think>x</think>']), { reasoning: '', content: 'Hello <think>x</think>' });
    assert.deepEqual(split(['<thin', 'g>']), { reasoning: '', content: '<thing>' });
    assert.deepEqual(split(['<thi']), { reasoning: '', content: '<thi' }, 'a held-back prefix comes out at the end');
  });
  it('an unclosed <think> is all reasoning', () => {
    assert.deepEqual(split(['  <think>still thinking</thi']), { reasoning: 'still thinking</thi', content: '' });
  });
});
