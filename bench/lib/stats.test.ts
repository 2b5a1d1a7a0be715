/**
 * The benchmark statistics: the one percentile definition (nearest rank) every benchmark reports,
 * the median of rounds, and the formatting of ratios and differences in the tables.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fmt, mean, median, percentile, ratio, signed, sum } from './stats.js';

describe('percentile (nearest rank)', () => {
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 … 1, unsorted input

  it('is the smallest value with at least p % of the values at or below it', () => {
    assert.equal(percentile(hundred, 50), 50);
    assert.equal(percentile(hundred, 90), 90);
    assert.equal(percentile(hundred, 99), 99);
    assert.equal(percentile(hundred, 99.5), 100);
    assert.equal(percentile(hundred, 100), 100);
    assert.equal(percentile(hundred, 0), 1);
    assert.equal(percentile(hundred, 0.5), 1);
    for (let p = 1; p <= 100; p++) assert.equal(percentile(hundred, p), p, `p${p} of 1..100`);
  });

  it('returns a measured value, never an interpolation between two', () => {
    assert.equal(percentile([10, 20, 30, 40], 50), 20);
    assert.equal(percentile([10, 20, 30, 40], 51), 30);
    assert.equal(percentile([1, 1000], 99), 1000);
    assert.equal(percentile([7], 1), 7);
  });

  it('ignores values that were not measured (NaN, ±Infinity) and is NaN when nothing is left', () => {
    assert.equal(percentile([Number.NaN, 3, Number.POSITIVE_INFINITY, 1, 2], 50), 2);
    assert.ok(Number.isNaN(percentile([], 50)));
    assert.ok(Number.isNaN(percentile([Number.NaN], 50)));
  });

  it('accepts typed arrays and does not reorder its input', () => {
    const lat = new Float64Array([3, 1, 2]);
    assert.equal(percentile(lat, 100), 3);
    assert.deepEqual([...lat], [3, 1, 2]);
  });

  it('refuses a p outside 0..100', () => {
    assert.throws(() => percentile([1], 101), RangeError);
    assert.throws(() => percentile([1], -1), RangeError);
    assert.throws(() => percentile([1], Number.NaN), RangeError);
  });
});

describe('median, mean and sum', () => {
  it('median is the middle value, the mean of the two middle ones for an even count', () => {
    assert.equal(median([5, 1, 3]), 3);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([Number.NaN, 2, 4]), 3);
    assert.ok(Number.isNaN(median([])));
  });

  it('mean ignores values that were not measured', () => {
    assert.equal(mean([1, 2, 6]), 3);
    assert.equal(mean([1, Number.NaN, 3]), 2);
    assert.ok(Number.isNaN(mean([])));
  });

  it('sum is NaN when a part is missing, so a partial total never looks complete', () => {
    assert.equal(sum([1, 2, 3]), 6);
    assert.equal(sum([]), 0);
    assert.ok(Number.isNaN(sum([1, Number.NaN])));
  });
});

describe('table formatting', () => {
  it('fmt uses fixed decimals with thousands separators and a dash for no value', () => {
    assert.equal(fmt(1234.5678, 2), '1,234.57');
    assert.equal(fmt(3), '3.0');
    assert.equal(fmt(Number.NaN), '—');
  });

  it('ratio shows a / b with ×, and a dash when undefined', () => {
    assert.equal(ratio(3, 2), '1.50×');
    assert.equal(ratio(-1, 4), '-0.25×');
    assert.equal(ratio(1, 0), '—');
    assert.equal(ratio(Number.NaN, 1), '—');
  });

  it('signed always shows the sign of a difference', () => {
    assert.equal(signed(1.234, 2), '+1.23');
    assert.equal(signed(-0.5, 1), '−0.5');
    assert.equal(signed(Number.NaN), '—');
  });
});
