import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { metricTypes, parseExposition, sampleValue } from './exposition.js';

describe('exposition reader', () => {
  it('reads escaped label values and special numbers', () => {
    const samples = parseExposition('# HELP x y\n# TYPE x gauge\nx{a="q\\"uote",b="back\\\\slash"} +Inf\ny 2\n');
    assert.deepEqual(samples, [
      { name: 'x', labels: { a: 'q"uote', b: 'back\\slash' }, value: Number.POSITIVE_INFINITY },
      { name: 'y', labels: {}, value: 2 },
    ]);
  });

  it('finds one sample by labels, refuses an ambiguous match, and lists the types', () => {
    const text = '# TYPE c counter\nc{a="1",b="x"} 3\nc{a="2",b="x"} 4\n';
    assert.equal(sampleValue(text, 'c', { a: '2' }), 4);
    assert.equal(sampleValue(text, 'c', { a: '3' }), undefined);
    assert.throws(() => sampleValue(text, 'c', { b: 'x' }), /2 samples of c match/);
    assert.deepEqual([...metricTypes(text)], [['c', 'counter']]);
  });
});
