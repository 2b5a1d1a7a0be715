/**
 * The time seam: everything that decides uses an injected
 * clock returning epoch milliseconds, so tests can freeze, advance or share time across replicas.
 * The Redis scripts receive this `now` as an argument; they never call Redis TIME.
 */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();

/** A hand-driven clock for tests and the benchmark. */
export interface ManualClock {
  (): number;
  set(ms: number): void;
  advance(ms: number): void;
}

export function manualClock(start = 1_700_000_000_000): ManualClock {
  let now = start;
  const clock = (() => now) as ManualClock;
  clock.set = (ms) => {
    now = ms;
  };
  clock.advance = (ms) => {
    now += ms;
  };
  return clock;
}
