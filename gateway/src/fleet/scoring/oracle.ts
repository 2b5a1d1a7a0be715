/**
 * The benchmark's oracle (ROUTING_STRATEGY=oracle; for benchmarking only, never a production
 * setting): it is given each simulated worker's true performance model (the same one the
 * simulator engine runs, lib/simulator/performance-model.ts: speed, degradation schedule,
 * prefix cache) and mirrors every worker's cache by recording what it sends there, which is
 * exact while it is the only gateway. It sends each request where the expected time to first
 * token is lowest: the worker's true first-token time for this prompt (cache hit or miss, at its
 * current speed) plus the expected wait for a free slot when the worker is full.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { createPerformanceModel, type PerformanceModel } from '../../../../lib/simulator/performance-model.js';
import type { Candidate, RoutingHint } from './candidate.js';

const workerModel = z.object({
  timeToFirstTokenMs: z.number().min(0),
  tokensPerSecond: z.number().min(0),
  responseTokens: z.number().int().positive(),
  speedFactor: z.number().positive(),
  prefillMsPer1kTokens: z.number().min(0),
  prefixCacheBlocks: z.number().int().min(0),
  prefixBlockChars: z.number().int().positive(),
  degrade: z.object({
    factor: z.number().min(1),
    afterMs: z.number().int().min(0),
    afterRequests: z.number().int().min(0),
    forMs: z.number().int().min(0),
  }),
  clockOriginMs: z.number().int().min(0).optional(),
});
/** The oracle's file (ROUTING_ORACLE_FILE): the true model of every worker, by address. */
export const oracleFile = z.object({ workers: z.record(z.string(), workerModel) });
export type OracleFile = z.infer<typeof oracleFile>;

export interface Oracle {
  choose(candidates: readonly Candidate[], hint: RoutingHint): number;
}

export function readOracleFile(file: string): OracleFile {
  return oracleFile.parse(JSON.parse(readFileSync(file, 'utf8')));
}

/** `now`: epoch ms, the clock the simulated workers' degradation schedules count in. */
export function createOracle(file: OracleFile, now: () => number = Date.now): Oracle {
  const models = new Map<string, { model: PerformanceModel; spec: OracleFile['workers'][string] }>();
  for (const [address, spec] of Object.entries(file.workers)) {
    models.set(address, { model: createPerformanceModel(spec, now), spec });
  }
  return {
    choose(candidates, hint) {
      let best = 0;
      let bestCost = Number.POSITIVE_INFINITY;
      candidates.forEach((c, i) => {
        const m = models.get(c.address);
        if (!m) return;
        const timing = m.model.estimate(hint.prefixBlocks, hint.promptTokens, m.spec);
        const service = timing.firstTokenMs + m.spec.responseTokens * timing.interTokenMs;
        const ahead = c.inFlight - c.capacity + 1;
        const wait = ahead > 0 ? (ahead * service) / Math.max(1, c.capacity) : 0;
        if (wait + timing.firstTokenMs < bestCost) {
          bestCost = wait + timing.firstTokenMs;
          best = i;
        }
      });
      models.get(candidates[best]!.address)?.model.commit(hint.prefixBlocks);
      return best;
    },
  };
}
