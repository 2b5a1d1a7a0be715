/**
 * The simulator engine's performance model (a load-test tool, not inference): how long a
 * simulated generation takes on one worker. In lib/ because two processes use it: the simulator
 * engine (services/inference) and the gateway's benchmark-only oracle router, which must know
 * each simulated worker's true speed and cache. Three knobs on top of the base speed:
 *
 * - a speed factor (2 = twice as fast: the first token and every token after come in half the time);
 * - a degradation switch: from `afterMs` after the clock origin, or from the `afterRequests`-th
 *   request, the worker is `factor` times slower, for `forMs` (0 = for good);
 * - a prefix-cache model: a bounded memory of the prompt-prefix blocks this worker saw recently
 *   (lib/chat/prefix-blocks.ts); prefill costs `prefillMsPer1kTokens` per 1,000 prompt tokens
 *   that are not in a cached prefix, so a prompt whose long prefix is cached answers sooner.
 */
import { createPrefixMemory, prefixBlockHashes } from '../chat/prefix-blocks.js';

export interface SimulatorPerformance {
  /** Multiplies the worker's speed (first token and token rate). 1 = as configured. */
  speedFactor: number;
  /** Prefill time per 1,000 uncached prompt tokens at speed 1 (0 = prompts cost nothing). */
  prefillMsPer1kTokens: number;
  /** Prompt-prefix blocks the simulated KV cache holds (0 = no cache model: every prompt is a miss). */
  prefixCacheBlocks: number;
  prefixBlockChars: number;
  degrade: {
    /** How many times slower once degraded (1 = never degrades). */
    factor: number;
    /** Degrade this long after the clock origin (0 = not by time). */
    afterMs: number;
    /** Degrade from this request on (0 = not by count). */
    afterRequests: number;
    /** Stay degraded this long, then recover (0 = for good). */
    forMs: number;
  };
  /** Epoch ms `degrade.afterMs` counts from; default: when the engine is created. */
  clockOriginMs?: number | undefined;
}

export const NO_PERFORMANCE_MODEL: SimulatorPerformance = {
  speedFactor: 1,
  prefillMsPer1kTokens: 0,
  prefixCacheBlocks: 0,
  prefixBlockChars: 512,
  degrade: { factor: 1, afterMs: 0, afterRequests: 0, forMs: 0 },
};

export interface SimulatedTiming {
  /** Delay before the first token. */
  firstTokenMs: number;
  /** Delay between two tokens. */
  interTokenMs: number;
  /** Leading prompt tokens that were in the simulated cache. */
  cachedPromptTokens: number;
}

export interface BaseSpeed {
  timeToFirstTokenMs: number;
  tokensPerSecond: number;
}

export interface PerformanceModel {
  /** Timing of one generation; records it (request count, prompt in the simulated cache). */
  begin(messages: ReadonlyArray<{ content: string }>, promptTokens: number, base: BaseSpeed): SimulatedTiming;
  /** The timing a prompt of these prefix blocks would get now, recording nothing. */
  estimate(blocks: readonly string[], promptTokens: number, base: BaseSpeed): SimulatedTiming;
  /** Records a generation of these prefix blocks (what `begin` does besides timing). */
  commit(blocks: readonly string[]): void;
  /** The blocks this model names a prompt by. */
  blocksOf(messages: ReadonlyArray<{ content: string }>): string[];
  /** The speed multiplier in effect now (speed factor ÷ degradation). */
  currentSpeed(): number;
}

export function createPerformanceModel(options: SimulatorPerformance, now: () => number = Date.now): PerformanceModel {
  const origin = options.clockOriginMs ?? now();
  const cache = createPrefixMemory(options.prefixCacheBlocks);
  const { degrade } = options;
  let requests = 0;
  let degradedSince: number | undefined;

  const degraded = (): boolean => {
    if (degrade.factor === 1) return false;
    const t = now();
    if (degradedSince === undefined) {
      const byTime = degrade.afterMs > 0 && t - origin >= degrade.afterMs;
      const byCount = degrade.afterRequests > 0 && requests >= degrade.afterRequests;
      if (!byTime && !byCount) return false;
      degradedSince = byTime ? origin + degrade.afterMs : t;
    }
    return degrade.forMs === 0 || t - degradedSince < degrade.forMs;
  };
  const currentSpeed = (): number => options.speedFactor / (degraded() ? degrade.factor : 1);

  const estimate = (blocks: readonly string[], promptTokens: number, base: BaseSpeed): SimulatedTiming => {
    const speed = currentSpeed();
    const hit = options.prefixCacheBlocks > 0 ? cache.peek(blocks) : 0;
    // Characters to tokens with the shared estimate's ratio, never more than the prompt.
    const cachedPromptTokens = Math.min(promptTokens, Math.floor((hit * options.prefixBlockChars) / 4));
    const prefillMs = (options.prefillMsPer1kTokens * (promptTokens - cachedPromptTokens)) / 1000;
    return {
      firstTokenMs: (base.timeToFirstTokenMs + prefillMs) / speed,
      interTokenMs: base.tokensPerSecond > 0 ? 1000 / base.tokensPerSecond / speed : 0,
      cachedPromptTokens,
    };
  };
  const remember = (blocks: readonly string[]): void => {
    if (options.prefixCacheBlocks > 0) {
      cache.match(blocks);
      cache.record(blocks);
    }
  };
  const commit = (blocks: readonly string[]): void => {
    requests += 1;
    remember(blocks);
  };
  const blocksOf = (messages: ReadonlyArray<{ content: string }>): string[] =>
    options.prefixCacheBlocks > 0 ? prefixBlockHashes(messages, options.prefixBlockChars) : [];
  return {
    currentSpeed,
    estimate,
    commit,
    blocksOf,
    begin(messages, promptTokens, base) {
      const blocks = blocksOf(messages);
      // The request counts before its timing (the afterRequests-th request is the first slow
      // one); its prompt enters the cache after it (a prompt never hits itself).
      requests += 1;
      const timing = estimate(blocks, promptTokens, base);
      remember(blocks);
      return timing;
    },
  };
}
