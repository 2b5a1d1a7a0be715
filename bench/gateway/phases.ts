/**
 * Orchestration of `npm run bench`: the main phase (start the mock, our four processes and
 * Portkey; warm up; every round runs every scenario against every target, the order rotating)
 * and the memory phase (fresh processes in front of a slow mock, many idle streams).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { saturate } from '../lib/autocannon.js';
import { waitUntil } from '../lib/procs.js';
import { fmt } from '../lib/stats.js';
import { spec, startMock, startOurPlatform, startPortkey, validate, type OurPlatform, type Target, type TargetKey } from '../lib/targets.js';
import { openaiEngine, type PhaseContext } from './context.js';
import { measureMemory, scenarios } from './scenarios.js';

/** Crashes of ours tolerated in the main phase (each restarts our stack) before the run gives up. */
const MAX_CRASHES = 3;

/** The last lines of a dead process's output, without the per-request error lines that drown them. */
function tailOf(output: string): string {
  const lines = output.split('\n').filter((l) => l.trim() !== '' && !l.includes('"msg":"request errored"'));
  return lines.slice(-25).join('\n').slice(-5000);
}

export async function mainPhase(ctx: PhaseContext): Promise<void> {
  const { workDir, tiersFile, flags, results, running, log } = ctx;
  log('starting the mock upstream, our platform (4 processes) and Portkey');
  const mock = await startMock(ctx, { tokens: 16 });
  running.started(mock.target);
  let stacks = 0;
  const startOurs = async (): Promise<OurPlatform> => {
    const dir = path.join(workDir, `ours-${(stacks += 1)}`);
    mkdirSync(dir);
    const platform = await startOurPlatform({ host: ctx, dir, tiersFile, inferenceEnv: openaiEngine(mock.url), capacity: 256 });
    running.started(platform.target);
    return platform;
  };
  let ours = await startOurs();
  const portkey = running.started(await startPortkey(ctx, mock.url));
  const current = (key: TargetKey): Target => (key === 'mock' ? mock.target : key === 'ours' ? ours.target : portkey);
  const keys: TargetKey[] = ['mock', 'ours', 'portkey'];
  for (const k of keys) await validate(current(k));
  log('all three targets answer; warming up');
  for (const k of keys) {
    await saturate(spec(current(k), false), flags.connections, 2);
    await saturate(spec(current(k), true), flags.connections, 1);
  }
  const round = scenarios(flags, results);
  let previous = 'warm-up';
  for (let r = 0; r < flags.rounds; r++) {
    for (const [si, scenario] of round.entries()) {
      // Alternate: every scenario rotates which target goes first.
      const shift = (r + si) % keys.length;
      for (const k of [...keys.slice(shift), ...keys.slice(0, shift)]) {
        let t = current(k);
        const dead = [...t.procs, t.front].find((p) => !p.alive());
        if (dead) {
          const exit = String(await dead.exited);
          const tail = tailOf(dead.output());
          if (k !== 'ours' || results.crashes.length >= MAX_CRASHES) throw new Error(`${dead.name} died during the benchmark (exit ${exit}):\n${tail}`);
          results.crashes.push({ process: dead.name, exit, during: previous, tail });
          log(`!! ${dead.name} of ours died (exit ${exit}) during/after ${previous}; restarting our stack. Last output:\n${tail}`);
          results.workerLost += ours.workerLost();
          await running.stop(ours.target);
          ours = await startOurs();
          t = ours.target;
          await validate(t);
          await saturate(spec(t, false), flags.connections, 1);
        }
        // Don't let one measurement's breakage (e.g. a lost worker connection) leak into the next.
        if (t.ready) {
          await waitUntil(t.ready, 15_000, `${t.label} to be ready and idle`, 100).catch((err: unknown) => log(String(err)));
          await sleep(1_100); // one more worker status report, so the gateway's load view is current too
        }
        previous = `round ${r + 1} ${scenario.id} (${t.label})`;
        const summary = await scenario.run(t);
        log(`round ${r + 1}/${flags.rounds} ${scenario.id.padEnd(13)} ${t.label.padEnd(34)} ${summary}`);
        await sleep(300);
      }
    }
  }
  results.workerLost += ours.workerLost();
  await running.stop(portkey);
  await running.stop(ours.target);
  await running.stop(mock.target);
}

export async function memoryPhase(ctx: PhaseContext): Promise<void> {
  const { workDir, tiersFile, flags, results, running, log } = ctx;
  const streams = flags.idleStreams;
  log(`memory: fresh processes in front of a slow mock (1 token, then 60 s pause); ${streams} idle streams each`);
  const slow = await startMock(ctx, { tokens: 4, interTokenMs: 60_000 }, 'mock direct (slow)');
  running.started(slow.target);
  const memDir = path.join(workDir, 'memory');
  mkdirSync(memDir);
  const ours = await startOurPlatform({ host: ctx, dir: memDir, tiersFile, inferenceEnv: openaiEngine(slow.url), capacity: streams + 200 });
  running.started(ours.target);
  const portkey = running.started(await startPortkey(ctx, slow.url));
  results.memory = [];
  for (const t of [slow.target, ours.target, portkey]) {
    const m = await measureMemory(t, streams, results);
    results.memory.push(m);
    log(
      `memory ${t.label.padEnd(34)} held ${m.held}/${streams}: RSS ${fmt(m.idle / 1024, 0)} → ${fmt(m.loaded / 1024, 0)} MiB ` +
        `(+${fmt((m.loaded - m.idle) / Math.max(1, m.held), 1)} KiB/stream), after release ${fmt(m.after / 1024, 0)} MiB` +
        (m.breakdown ? `; path: ${m.breakdown}` : ''),
    );
  }
  await running.stop(portkey);
  await running.stop(ours.target);
  await running.stop(slow.target);
}
