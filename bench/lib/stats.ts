/**
 * The statistics every benchmark in bench/ uses (one definition each; no dependencies).
 *
 * percentile, median and mean ignore values that are not finite numbers (NaN marks "not measured", e.g. a
 * decode rate of a one-token reply) and returns NaN when no value is left.
 *
 *  - percentile(values, p): **nearest rank**. The p-th percentile (0 < p ≤ 100) of n values is
 *    the smallest value with at least p % of the values at or below it: sorted[⌈p/100 · n⌉ − 1];
 *    p = 0 gives the minimum. The result is always a measured value, never an interpolation, so
 *    "p99 of 100 requests" is the second slowest and "p50 of 4" is the second smallest.
 *  - median(values): the middle value, the mean of the two middle ones for an even count. Used for
 *    "the median of the rounds" (one figure per round); per-request latencies use percentile().
 *  - mean(values): arithmetic mean.
 */

function finite(values: Iterable<number>): number[] {
  const out: number[] = [];
  for (const v of values) if (Number.isFinite(v)) out.push(v);
  return out;
}

/** Nearest-rank percentile (see the file comment); p in 0..100. */
export function percentile(values: Iterable<number>, p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile: p must be in 0..100, got ${p}`);
  const sorted = finite(values).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  // p · n first: (p / 100) · n can land just above an integer (0.07 · 100 = 7.000000000000001).
  const rank = Math.max(1, Math.ceil((p * sorted.length) / 100));
  return sorted[rank - 1] ?? Number.NaN;
}

/** The middle value (mean of the two middle ones for an even count). */
export function median(values: Iterable<number>): number {
  const sorted = finite(values).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Arithmetic mean. */
export function mean(values: Iterable<number>): number {
  const v = finite(values);
  return v.length === 0 ? Number.NaN : sum(v) / v.length;
}

/**
 * Plain sum, the one exception to "not finite is ignored": a NaN part makes the total NaN, since
 * a total with a part missing (e.g. an unreadable process's RSS) would look like a real one.
 */
export function sum(values: Iterable<number>): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}

/** A number for the tables: '—' when not finite, fixed decimals with thousands separators otherwise. */
export function fmt(value: number, decimals = 1): string {
  if (!Number.isFinite(value)) return '—';
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** a / b as "1.23×"; '—' when either is not finite or b is 0. */
export function ratio(a: number, b: number, decimals = 2): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '—';
  return `${fmt(a / b, decimals)}×`;
}

/** A difference with its sign always shown ("+1.20", "−0.35"); '—' when not finite. */
export function signed(value: number, decimals = 1): string {
  if (!Number.isFinite(value)) return '—';
  return `${value >= 0 ? '+' : '−'}${fmt(Math.abs(value), decimals)}`;
}
