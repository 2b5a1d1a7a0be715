/**
 * Levers measured the way they were done before and the way they are done now, in one process:
 * CPU time (process.cpuUsage) per operation, alternating the order every round so that neither
 * side always runs on a warmer or quieter process, medians of the rounds and the ratio now/before.
 * Used by the microbenchmarks (bench/gateway-hotpath.ts, bench/routing-hotpath.ts).
 */
import { fmt, median } from './stats.js';

/** A synchronous lever: one operation before and now. */
export interface Lever {
  name: string;
  old: () => void;
  now: () => void;
}

/** An asynchronous lever: one call before and now. */
export interface AsyncLever {
  name: string;
  old: () => Promise<void>;
  now: () => Promise<void>;
}

/** The table's first lines; each lever adds the row abRow returns. */
export function abTableHead(rounds: number, ops: number): string[] {
  return [
    `CPU ns per operation, median of ${rounds} alternating rounds of ${ops} operations (Node ${process.version})`,
    '',
    '| per request | before | now | now / before |',
    '|---|---:|---:|---:|',
  ];
}

/** CPU ns per operation of `fn`, run `ops` times in a row. */
export function cpuNsPerOp(fn: () => void, ops: number): number {
  const start = process.cpuUsage();
  for (let i = 0; i < ops; i++) fn();
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / ops;
}

/** CPU ns per call of an asynchronous operation, `calls` calls one after another. */
export async function cpuNsPerCall(fn: () => Promise<void>, calls: number): Promise<number> {
  const start = process.cpuUsage();
  for (let i = 0; i < calls; i++) await fn();
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / calls;
}

/**
 * One warm-up of each side, then `rounds` rounds alternating which side goes first; returns the
 * table row: medians and their ratio.
 */
export async function abRow(name: string, old: () => number | Promise<number>, now: () => number | Promise<number>, rounds: number): Promise<string> {
  await old();
  await now();
  const before: number[] = [];
  const after: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      before.push(await old());
      after.push(await now());
    } else {
      after.push(await now());
      before.push(await old());
    }
  }
  const [o, n] = [median(before), median(after)];
  return `| ${name} | ${fmt(o, 0)} | ${fmt(n, 0)} | ${(n / Math.max(1, o)).toFixed(2)} |`;
}
