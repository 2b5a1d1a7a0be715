/**
 * Routing configuration (README "Configuration", docs/decisions.md "Routing"): the strategy, the
 * scorer's weights and the picker's knobs. Defaults are the ones the routing benchmark
 * (bench/routing.ts, docs/BENCHMARKS.md) was run with.
 */
import { z } from 'zod';
import type { ScoreWeights } from './score.js';

const weight = (d: number) => z.coerce.number().min(0).max(100).default(d);

export const routingEnv = {
  /** `scored` (the pipeline); `least-loaded` and `round-robin` (references); `oracle` (benchmark only). */
  ROUTING_STRATEGY: z.enum(['scored', 'least-loaded', 'round-robin', 'oracle']).default('scored'),
  ROUTING_WEIGHT_LOAD: weight(1),
  ROUTING_WEIGHT_TTFT: weight(1),
  ROUTING_WEIGHT_THROUGHPUT: weight(0.5),
  ROUTING_WEIGHT_PREFIX: weight(1),
  ROUTING_WEIGHT_OWNER: weight(2),
  /** Share of picks made uniformly among all candidates (exploration). */
  ROUTING_EXPLORATION: z.coerce.number().min(0).max(1).default(0.05),
  /** Candidates within this much of the best score share the traffic (weighted by score). */
  ROUTING_BAND: z.coerce.number().min(0).max(1).default(0.1),
  /** Weight of each new sample in a worker's TTFT and tokens/s averages. */
  ROUTING_EWMA_ALPHA: z.coerce.number().gt(0).max(1).default(0.3),
  /** Prefix blocks remembered per worker (each names ROUTING_PREFIX_BLOCK_CHARS characters). */
  ROUTING_PREFIX_MEMORY_BLOCKS: z.coerce.number().int().min(0).default(256),
  ROUTING_PREFIX_BLOCK_CHARS: z.coerce.number().int().min(16).default(512),
  /**
   * When the chosen workers already hold queued requests, Free-tier requests may occupy at most
   * this share of the pool's running capacity; beyond it they get 503 capacity_exceeded.
   */
  ROUTING_FREE_SHARE: z.coerce.number().min(0).max(1).default(0.25),
  /** The oracle's knowledge (JSON, lib/simulator model per worker address); with `oracle` only. */
  ROUTING_ORACLE_FILE: z.string().optional(),
};

type RoutingEnv = z.infer<z.ZodObject<typeof routingEnv>>;

export interface RoutingSettings {
  strategy: RoutingEnv['ROUTING_STRATEGY'];
  weights: ScoreWeights;
  exploration: number;
  band: number;
  ewmaAlpha: number;
  prefixMemoryBlocks: number;
  prefixBlockChars: number;
  freeShare: number;
  oracleFile: string | undefined;
}

export const DEFAULT_ROUTING: RoutingSettings = routingSettings(z.object(routingEnv).parse({}));

export function routingSettings(env: RoutingEnv): RoutingSettings {
  return {
    strategy: env.ROUTING_STRATEGY,
    weights: {
      load: env.ROUTING_WEIGHT_LOAD,
      ttft: env.ROUTING_WEIGHT_TTFT,
      throughput: env.ROUTING_WEIGHT_THROUGHPUT,
      prefix: env.ROUTING_WEIGHT_PREFIX,
      owner: env.ROUTING_WEIGHT_OWNER,
    },
    exploration: env.ROUTING_EXPLORATION,
    band: env.ROUTING_BAND,
    ewmaAlpha: env.ROUTING_EWMA_ALPHA,
    prefixMemoryBlocks: env.ROUTING_PREFIX_MEMORY_BLOCKS,
    prefixBlockChars: env.ROUTING_PREFIX_BLOCK_CHARS,
    freeShare: env.ROUTING_FREE_SHARE,
    oracleFile: env.ROUTING_ORACLE_FILE,
  };
}
