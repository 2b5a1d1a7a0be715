import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BEGIN, END, replaceGenerated } from './generated-block.js';

describe('BENCHMARKS.md generated block', () => {
  it('a run replaces only the text between the markers and keeps the hand-written sections', () => {
    const first = replaceGenerated('', '# Benchmarks\n\nrun 1\n');
    const withNotes = `${first}\n## Routing\n\nhand-written figures\n`;
    const second = replaceGenerated(withNotes, '# Benchmarks\n\nrun 2\n');
    assert.ok(second.includes('run 2') && !second.includes('run 1'));
    assert.ok(second.endsWith('## Routing\n\nhand-written figures\n'));
    assert.equal(second.split(BEGIN).length, 2);
    assert.equal(second.split(END).length, 2);
  });

  it('a file without markers keeps its old text below the new block', () => {
    const out = replaceGenerated('## Old section\n', 'report');
    assert.ok(out.startsWith(`${BEGIN}\nreport\n${END}\n`));
    assert.ok(out.endsWith('## Old section\n'));
  });
});
