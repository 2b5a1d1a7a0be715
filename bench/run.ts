/**
 * `npm run bench`: the platform's gateway path against the mock upstream directly and against the
 * Portkey gateway in front of the same mock. Every target runs as real separate processes on
 * 127.0.0.1; targets alternate within each measurement; medians over rounds.
 *
 *   npm run bench                    # full run (~5 min on 2 cores), writes docs/BENCHMARKS.md
 *   npm run bench -- --profile       # + a --cpu-prof run of the gateway under load, summarised
 *   npm run bench -- --profile-only  # only the profile run
 *   npm run bench -- --quick         # smoke run (about a minute): checks it runs end to end
 *   flags: --rounds=3 --sat-seconds=5 --rate-seconds=4 --idle-streams=1000 --no-write (bench/gateway/flags.ts)
 *
 * This file is the composition root: flags, the run's results, the phases
 * (bench/gateway/phases.ts, profile.ts), the report (bench/gateway/report.ts) and the cleanup.
 * No timing assertions: this prints figures (README "bench/").
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RunningTargets, type PhaseContext } from './gateway/context.js';
import { FlagError, parseGatewayFlags, type GatewayFlags } from './gateway/flags.js';
import { mainPhase, memoryPhase } from './gateway/phases.js';
import { profilePhase } from './gateway/profile.js';
import { replaceGenerated } from './gateway/generated-block.js';
import { report } from './gateway/report.js';
import { RunResults } from './gateway/results.js';
import { ChildProcesses } from './lib/procs.js';
import { writeBenchTiers } from './lib/targets.js';

/**
 * Hard ceiling for the whole run: whatever happens, exit (children are killed by the exit hook).
 * Generous: on a loaded 2-core host a full run with --profile takes well over 15 minutes.
 */
const WATCHDOG_MS = 30 * 60_000;

let flags: GatewayFlags;
try {
  flags = parseGatewayFlags(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`${err instanceof FlagError || err instanceof TypeError ? err.message : String(err)}\n`);
  process.exit(2);
}

const root = path.resolve(import.meta.dirname, '..');
const t0 = Date.now();
const log = (msg: string): void => {
  process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
};

process.on('SIGINT', () => {
  log('interrupted; stopping child processes');
  process.exit(130);
});
process.on('SIGTERM', () => process.exit(143));
setTimeout(() => {
  process.stderr.write(`benchmark exceeded ${WATCHDOG_MS / 60_000} min; aborting\n`);
  process.exit(2);
}, WATCHDOG_MS).unref();

const workDir = mkdtempSync(path.join(os.tmpdir(), 'xero-bench-'));
const results = new RunResults();
results.loadAverages.push(os.loadavg()[0] ?? Number.NaN);
const ctx: PhaseContext = {
  root,
  children: new ChildProcesses(),
  workDir,
  tiersFile: writeBenchTiers(root, workDir),
  flags,
  results,
  running: new RunningTargets(),
  log,
};

try {
  log(`${flags.command}: ${os.cpus().length} cores, Node ${process.version}; work dir ${workDir}`);
  // A failing later phase must not throw away the figures of the earlier ones.
  const phase = async (name: string, run: (c: PhaseContext) => Promise<void>): Promise<void> => {
    try {
      await run(ctx);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      results.phaseErrors.push(`${name} phase failed: ${message}`);
      log(`!! ${name} phase failed: ${message}`);
      await ctx.running.stopAll();
    }
  };
  if (flags.main) {
    await mainPhase(ctx);
    await phase('memory', memoryPhase);
  }
  if (flags.profile) await phase('profile', profilePhase);
  results.loadAverages.push(os.loadavg()[0] ?? Number.NaN);
  const md = report(root, flags, results);
  process.stdout.write(`\n${md}\n`);
  if (flags.write && flags.main) {
    const file = path.join(root, 'docs', 'BENCHMARKS.md');
    writeFileSync(file, replaceGenerated(existsSync(file) ? readFileSync(file, 'utf8') : '', md));
    log('wrote the generated part of docs/BENCHMARKS.md');
  }
  log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
} catch (err) {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await ctx.running.stopAll();
  rmSync(workDir, { recursive: true, force: true });
}
// Nothing may keep the process alive (sockets of a failed run, timers): leave explicitly.
process.exit(process.exitCode ?? 0);
