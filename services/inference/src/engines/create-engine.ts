/** Picks the engine named by config (STYLE.md A-16). Heavy engines are imported only when chosen. */
import type { Logger } from 'pino';
import type { InferenceConfig } from '../config.js';
import type { Engine } from './engine.js';
import { createSimulatorEngine } from './simulator.js';

export async function createEngine(config: InferenceConfig, logger: Logger): Promise<Engine> {
  switch (config.INFERENCE_ENGINE) {
    case 'simulator':
      return createSimulatorEngine({
        tokensPerSecond: config.SIM_TOKENS_PER_SECOND,
        timeToFirstTokenMs: config.SIM_TTFT_MS,
        responseTokens: config.SIM_RESPONSE_TOKENS,
        contextWindow: config.SIM_CONTEXT_WINDOW,
        failAfterTokens: config.SIM_FAIL_AFTER_TOKENS,
        hangAfterTokens: config.SIM_HANG_AFTER_TOKENS,
        crashAfterTokens: config.SIM_CRASH_AFTER_TOKENS,
      });
    case 'llama-cpp':
    case 'openai':
      logger.fatal({ engine: config.INFERENCE_ENGINE }, 'engine not available in this build');
      throw new Error(`engine ${config.INFERENCE_ENGINE} is not available yet`);
  }
}
