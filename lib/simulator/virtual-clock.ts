/**
 * A virtual clock for replaying traffic without waiting for it: callbacks scheduled at virtual
 * times run in time order (at equal times, in the order they were scheduled), each seeing `now()`
 * at its own time, and may schedule more. The routing benchmark's event-driven model
 * (bench/routing-model.ts) and the router's recovery test drive the gateway's real router code
 * with it.
 */
export interface VirtualClock {
  /** The current virtual time (ms). */
  now(): number;
  /** Schedules `run` at virtual time `t`. */
  at(t: number, run: () => void): void;
  /** Runs every scheduled callback, and those they schedule, until none is left. */
  run(): void;
}

export function createVirtualClock(): VirtualClock {
  let now = 0;
  const events: Array<{ t: number; run: () => void }> = [];
  return {
    now: () => now,
    at: (t, run) => void events.push({ t, run }),
    run() {
      while (events.length > 0) {
        let next = 0;
        for (let i = 1; i < events.length; i++) if (events[i]!.t < events[next]!.t) next = i;
        const e = events.splice(next, 1)[0]!;
        now = e.t;
        e.run();
      }
    },
  };
}
