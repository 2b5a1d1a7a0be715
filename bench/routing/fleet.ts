/**
 * The routing benchmark's simulated fleet and workload, shared by the real-process benchmark
 * (bench/routing.ts) and its event-driven replica (bench/routing-model.ts). Times are at
 * speed 1 and multiplied by `scale` (the same fleet, slowed down; the rate divided by it).
 */
import type { SimulatorPerformance } from '../../lib/simulator/performance-model.js';
import type { Random } from '../../gateway/src/fleet/scoring/random.js';

export type Scenario = 'steady' | 'bursty';
export const STRATEGIES = ['round-robin', 'least-loaded', 'scored', 'oracle'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export const CACHE_BLOCKS = 24;
export const BLOCK_CHARS = 512;
export const CAPACITY = 2;
export const QUEUE = 16;
export const DEGRADE = { factor: 8, at: 0.5, for: 0.3 };
export const WORKERS = [
  { id: 'sim-1x', speed: 1, degrades: false },
  { id: 'sim-2x', speed: 2, degrades: false },
  { id: 'sim-4x', speed: 4, degrades: false },
  { id: 'sim-2x-degrading', speed: 2, degrades: true },
] as const;
export type WorkerSpec = (typeof WORKERS)[number];
/** Four shared prefixes of 11 blocks, then a short per-request question. */
export const PREFIX_COUNT = 4;
export const PROMPT_TOKENS_ESTIMATE = 1450;

export interface Arrival {
  atMs: number;
  prefix: number;
  i: number;
}

export interface FleetSpec {
  scale: number;
  seconds: number;
  rate: number;
  base: { timeToFirstTokenMs: number; tokensPerSecond: number; responseTokens: number };
  prefillMsPer1k: number;
  prefixes: string[];
  messages(a: Arrival): Array<{ role: 'system' | 'user'; content: string }>;
  schedule(scenario: Scenario, random: Random): Arrival[];
  performance(w: WorkerSpec, originMs: number): SimulatorPerformance;
}

function prefixText(k: number): string {
  const words = ['policy', 'context', 'the', 'assistant', 'answers', 'briefly', 'about', 'document', String(k), 'section'];
  let s = `System prompt ${k}. `;
  for (let i = 0; s.length < 11 * BLOCK_CHARS; i++) s += `${words[(i * (k + 3)) % words.length]} `;
  return s.slice(0, 11 * BLOCK_CHARS);
}

export function fleetSpec(options: { scale: number; seconds?: number | undefined; rate?: number | undefined }): FleetSpec {
  const { scale } = options;
  const seconds = options.seconds ?? 20 * scale;
  const rate = options.rate ?? 14 / scale;
  const prefixes = Array.from({ length: PREFIX_COUNT }, (_, k) => prefixText(k));
  const prefillMsPer1k = 400 * scale;
  return {
    scale,
    seconds,
    rate,
    base: { timeToFirstTokenMs: 60 * scale, tokensPerSecond: 40 / scale, responseTokens: 24 },
    prefillMsPer1k,
    prefixes,
    messages: (a) => [
      { role: 'system', content: prefixes[a.prefix]! },
      { role: 'user', content: `Question ${a.i}: what does section ${a.i % 97} say?` },
    ],
    schedule(scenario, random) {
      const out: Arrival[] = [];
      const end = seconds * 1000;
      let t = 0;
      let i = 0;
      for (;;) {
        // steady: Poisson at `rate`; bursty: `scale` s at 2.5 × rate, then 1.5 × scale s idle (same mean).
        if (scenario === 'steady') t += -Math.log(1 - random()) * (1000 / rate);
        else {
          const period = 2500 * scale;
          t += -Math.log(1 - random()) * (1000 / (2.5 * rate));
          if (t % period >= 1000 * scale) t += period - (t % period);
        }
        if (t >= end) break;
        out.push({ atMs: t, prefix: Math.floor(random() * PREFIX_COUNT), i: i++ });
      }
      return out;
    },
    performance(w, originMs) {
      return {
        speedFactor: w.speed,
        prefillMsPer1kTokens: prefillMsPer1k,
        prefixCacheBlocks: CACHE_BLOCKS,
        prefixBlockChars: BLOCK_CHARS,
        degrade: w.degrades
          ? { factor: DEGRADE.factor, afterMs: Math.round(seconds * 1000 * DEGRADE.at), afterRequests: 0, forMs: Math.round(seconds * 1000 * DEGRADE.for) }
          : { factor: 1, afterMs: 0, afterRequests: 0, forMs: 0 },
        clockOriginMs: originMs,
      };
    },
  };
}
