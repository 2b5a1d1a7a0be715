/** Picks the engine named by config (INFERENCE_ENGINE). Heavy engines are imported only when chosen. */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { isAppError } from '../../../../lib/errors/app-error.js';
import type { InferenceConfig } from '../config.js';
import type { Engine } from './engine.js';
import { createSimulatorEngine } from './simulator/simulator-engine.js';
import type { SimulatorPerformance } from '../../../../lib/simulator/performance-model.js';

export interface CreatedEngine {
  engine: Engine;
  /** GPU type the engine runs on (false = CPU), for hardware-class checks. */
  gpu: () => string | false;
}

export async function createEngine(config: InferenceConfig, logger: Logger): Promise<CreatedEngine> {
  switch (config.INFERENCE_ENGINE) {
    case 'simulator':
      return {
        engine: createSimulatorEngine({
          tokensPerSecond: config.SIM_TOKENS_PER_SECOND,
          timeToFirstTokenMs: config.SIM_TTFT_MS,
          responseTokens: config.SIM_RESPONSE_TOKENS,
          contextWindow: config.SIM_CONTEXT_WINDOW,
          failAfterTokens: config.SIM_FAIL_AFTER_TOKENS,
          hangAfterTokens: config.SIM_HANG_AFTER_TOKENS,
          crashAfterTokens: config.SIM_CRASH_AFTER_TOKENS,
          performance: simulatorPerformance(config),
        }),
        gpu: () => false,
      };
    case 'openai': {
      const { createOpenAIEngine } = await import('./openai/openai-engine.js');
      return {
        engine: createOpenAIEngine(
          {
            baseUrl: config.OPENAI_UPSTREAM_URL,
            apiKey: config.OPENAI_UPSTREAM_API_KEY,
            model: config.OPENAI_UPSTREAM_MODEL,
            contextWindow: config.OPENAI_UPSTREAM_CONTEXT_WINDOW,
            // Admission bounds running generations and embeddings: one connection each.
            maxConnections: config.INFERENCE_CAPACITY,
          },
          { logger },
        ),
        // The upstream owns the accelerator; the declared class is the operator's statement.
        gpu: () => false,
      };
    }
    case 'llama-cpp':
      return createLlamaEngine(config, logger);
  }
}

/**
 * llama.cpp with the configured model; when it cannot be had (no network and no cached copy)
 * and LLAMA_FALLBACK_TINY is on, say so plainly and serve the generated tiny model instead,
 * so the platform still answers (its text is the tiny model's successor pattern, not language).
 */
async function createLlamaEngine(config: InferenceConfig, logger: Logger): Promise<CreatedEngine> {
  const { createLlamaCppEngine } = await import('./llama-cpp/llama-cpp-engine.js');
  const options = {
    modelsDir: config.LLAMA_MODELS_DIR,
    allowDownload: config.LLAMA_ALLOW_DOWNLOAD,
    gpu: config.LLAMA_GPU,
    threads: config.LLAMA_THREADS,
    parallel: config.INFERENCE_CAPACITY,
    contextSize: config.LLAMA_CONTEXT_SIZE,
    modelName: config.LLAMA_MODEL_NAME,
  };
  let current = createLlamaCppEngine({ ...options, modelPath: config.LLAMA_MODEL }, { logger });
  const engine: Engine = {
    async start(signal) {
      try {
        await current.start(signal);
      } catch (err) {
        if (!config.LLAMA_FALLBACK_TINY || !isAppError(err) || err.code !== 'model_unavailable') throw err;
        const { writeTinyGguf } = await import('./llama-cpp/tiny-gguf.js');
        const tiny = path.resolve(config.LLAMA_MODELS_DIR, 'xerotier-tiny-successor.gguf');
        logger.warn(
          { model: config.LLAMA_MODEL, fallback: tiny },
          'the configured model is not available (no network and no cached copy); serving the built-in tiny test model, whose output is a character pattern, not language',
        );
        await mkdir(path.dirname(tiny), { recursive: true });
        await writeTinyGguf(tiny);
        await current.close();
        current = createLlamaCppEngine({ ...options, modelPath: tiny, modelName: 'xerotier-tiny-successor' }, { logger });
        await current.start(signal);
      }
    },
    info: () => current.info(),
    get unsupported() {
      return current.unsupported;
    },
    ready: () => current.ready(),
    countPromptTokens: (m, t, p) => current.countPromptTokens(m, t, p),
    generate: (p, s) => current.generate(p, s),
    embed: (p, s) => current.embed(p, s),
    close: () => current.close(),
  };
  return { engine, gpu: () => current.hardware().gpu };
}

function simulatorPerformance(config: InferenceConfig): SimulatorPerformance {
  return {
    speedFactor: config.SIM_SPEED_FACTOR,
    prefillMsPer1kTokens: config.SIM_PREFILL_MS_PER_1K_TOKENS,
    prefixCacheBlocks: config.SIM_PREFIX_CACHE_BLOCKS,
    prefixBlockChars: config.SIM_PREFIX_BLOCK_CHARS,
    degrade: {
      factor: config.SIM_DEGRADE_FACTOR,
      afterMs: config.SIM_DEGRADE_AFTER_MS,
      afterRequests: config.SIM_DEGRADE_AFTER_REQUESTS,
      forMs: config.SIM_DEGRADE_FOR_MS,
    },
    clockOriginMs: config.SIM_CLOCK_ORIGIN_MS,
  };
}
