/**
 * Routing configuration (README "Configuration", docs/decisions.md "Routing"): the strategy, the
 * scorer's weights and the picker's knobs. Defaults were chosen with the routing benchmark's
 * event-driven replica (bench/routing-model.ts --sweep, docs/BENCHMARKS.md) and are the ones
 * the benchmark runs with.
 */
import { z } from 'zod';
import type { ScoreWeights } from './score.js';
import type { SilenceSettings } from './silence.js';

const weight = (d: number) => z.coerce.number().min(0).max(100).default(d);

export const routingEnv = {
  /** `scored` (the pipeline); `least-loaded` and `round-robin` (references); `oracle` (benchmark only). */
  ROUTING_STRATEGY: z.enum(['scored', 'least-loaded', 'round-robin', 'oracle']).default('scored'),
  /** Expected TTFT = ttft × prefill estimate + load × queue-wait estimate (score.ts). */
  ROUTING_WEIGHT_TTFT: weight(1),
  ROUTING_WEIGHT_LOAD: weight(1),
  /** Weight of the decode time in a request's time on a slot (the queue-wait estimate). */
  ROUTING_WEIGHT_THROUGHPUT: weight(1),
  /** Trust in the per-worker prefix memory, 0 (ignore) to 1. */
  ROUTING_WEIGHT_PREFIX: z.coerce.number().min(0).max(1).default(1),
  /** Discount of the calling project's own workers' expected TTFT, 0 to 1 (0.5: preferred unless twice as slow). */
  ROUTING_WEIGHT_OWNER: z.coerce.number().min(0).max(1).default(0.5),
  /**
   * Weight of the prefix blocks a prompt would evict from a worker's memory, each at that worker's
   * miss − hit TTFT per prompt block (score.ts evictionMs; 0: ignore), added when picking.
   */
  ROUTING_WEIGHT_EVICTION: weight(1),
  /**
   * Share of picks that may go to a worker not heard from (silence.ts: exploration; only to a
   * free slot, and with a prefix prompt only where it is cached, router.ts).
   */
  ROUTING_EXPLORATION: z.coerce.number().min(0).max(1).default(0.05),
  /**
   * A worker is not heard from once this many requests it could have served went elsewhere since
   * its last feedback (0: by time alone, ROUTING_PROBE_AFTER_MS) ...
   */
  ROUTING_PROBE_AFTER_REQUESTS: z.coerce.number().int().min(0).default(24),
  /** ... and at least this long has passed (0: by the count alone) ... */
  ROUTING_PROBE_AFTER_MS: z.coerce.number().int().min(0).default(1000),
  /** ... or, whatever the traffic, after this long (0: never by time alone). */
  ROUTING_PROBE_MAX_SILENCE_MS: z.coerce.number().int().min(0).default(30000),
  /**
   * A worker slower than it has been (share-floor.ts `degraded`) is not heard from once this many
   * requests it could have served went elsewhere since its last feedback (with
   * ROUTING_PROBE_AFTER_MS and ROUTING_PROBE_MAX_SILENCE_MS as for any worker; 0: as
   * ROUTING_PROBE_AFTER_REQUESTS). It is probed that much sooner, so its recovery is seen sooner;
   * its probes go only to a free slot and, until it has missed twice
   * ROUTING_PROBE_AFTER_REQUESTS, only with a prompt whose prefix it holds (router.ts). 12: in
   * the routing model (docs/BENCHMARKS.md, twelfth sitting; 101 seeds, steady arrivals, time
   * scale 1 / 3) a healthy worker's 24 left a worker under 5 % of the requests after its
   * recovery in 23 / 20 runs, 12 in 10 / 8, at the same TTFT p99 (within 1 %) and the same 4 %
   * share for the worker while it is slow; 8 and 6 gained nothing more, 16 and 20 gave back
   * part of it.
   */
  ROUTING_PROBE_DEGRADED_AFTER_REQUESTS: z.coerce.number().int().min(0).default(12),
  /**
   * After a pause in all traffic longer than this, a candidate slower than it has been
   * (share-floor.ts `degraded`) counts as not heard from: it may be probed, and its next sample
   * starts its figures over (0: off; a pause is then no silence).
   */
  ROUTING_PROBE_AFTER_PAUSE_MS: z.coerce.number().int().min(0).default(0),
  /**
   * Share of the requests a healthy worker could have served that it gets at least
   * (share-floor.ts: only to a free slot, with a prompt it holds the prefix of; a worker slower
   * than it has been only as a probe once not heard from; 0: no floor) ... 0.06 (3 of 40) for
   * the routing goal of 5 %: a floor of exactly 5 % (2 of 40) is met at best, and in the routing
   * model (101 seeds, steady arrivals, time scale 1 / 3) left a healthy worker under 5 % of the
   * requests in 10 / 6 runs, 0.06 in 2 / 3 at a TTFT p99 3–7 % higher (still 0.77–0.86× the
   * oracle's; docs/decisions.md, 55).
   */
  ROUTING_MIN_SHARE: z.coerce.number().min(0).max(1).default(0.06),
  /** ... counted over this many of its last such requests. */
  ROUTING_MIN_SHARE_WINDOW: z.coerce.number().int().min(1).max(100000).default(40),
  /** Workers whose expected TTFT is within this fraction of the best share the traffic (weighted 1/TTFT). */
  ROUTING_BAND: z.coerce.number().min(0).max(10).default(0.1),
  /** Weight of each new sample in a worker's TTFT and tokens/s averages. */
  ROUTING_EWMA_ALPHA: z.coerce.number().gt(0).max(1).default(0.5),
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
  /** When a worker counts as not heard from (silence.ts). */
  silence: SilenceSettings;
  /** A pause in all traffic after which a degraded worker counts as not heard from (0: off). */
  probeAfterPauseMs: number;
  /** Missed requests after which a degraded worker is not heard from (0: as `silence.afterRequests`). */
  probeDegradedAfterRequests: number;
  /** The share floor (share-floor.ts): the share and the window of requests it is counted over. */
  minShare: number;
  minShareWindow: number;
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
      ttft: env.ROUTING_WEIGHT_TTFT,
      load: env.ROUTING_WEIGHT_LOAD,
      throughput: env.ROUTING_WEIGHT_THROUGHPUT,
      prefix: env.ROUTING_WEIGHT_PREFIX,
      owner: env.ROUTING_WEIGHT_OWNER,
      eviction: env.ROUTING_WEIGHT_EVICTION,
    },
    exploration: env.ROUTING_EXPLORATION,
    silence: { afterRequests: env.ROUTING_PROBE_AFTER_REQUESTS, afterMs: env.ROUTING_PROBE_AFTER_MS, maxMs: env.ROUTING_PROBE_MAX_SILENCE_MS },
    probeAfterPauseMs: env.ROUTING_PROBE_AFTER_PAUSE_MS,
    probeDegradedAfterRequests: env.ROUTING_PROBE_DEGRADED_AFTER_REQUESTS,
    minShare: env.ROUTING_MIN_SHARE,
    minShareWindow: env.ROUTING_MIN_SHARE_WINDOW,
    band: env.ROUTING_BAND,
    ewmaAlpha: env.ROUTING_EWMA_ALPHA,
    prefixMemoryBlocks: env.ROUTING_PREFIX_MEMORY_BLOCKS,
    prefixBlockChars: env.ROUTING_PREFIX_BLOCK_CHARS,
    freeShare: env.ROUTING_FREE_SHARE,
    oracleFile: env.ROUTING_ORACLE_FILE,
  };
}
