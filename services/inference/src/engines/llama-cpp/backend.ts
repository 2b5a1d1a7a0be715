/**
 * The llama.cpp backend: loading prebuilt binaries for the requested GPU (never compiling at run
 * time), routing llama.cpp's own log lines into pino, and reporting the hardware in use.
 */
import type { Logger } from 'pino';
import { LlamaLogLevel, getLlama, type Llama } from 'node-llama-cpp';
import { AppError } from '../../../../../lib/errors/app-error.js';

export type LlamaGpuOption = 'auto' | 'cuda' | 'vulkan' | 'metal' | 'cpu';

/** What llama.cpp detected and uses; for the Info/Health RPC and startup logs. */
export interface LlamaHardware {
  /** GPU backend in use ('cuda' | 'vulkan' | 'metal'), or false on CPU. */
  gpu: string | false;
  gpuDevices: string[];
  /** llama.cpp `systemInfo`, e.g. "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | …". */
  cpuFeatures: string;
}

/** 'auto' tries CUDA, Vulkan, Metal, then CPU. An explicit GPU that cannot load is `backend_unavailable`. */
export async function loadLlama(gpu: LlamaGpuOption, logger: Logger): Promise<Llama> {
  try {
    return await getLlama({
      gpu: gpu === 'cpu' ? false : gpu,
      build: 'never', // never compile llama.cpp at runtime; prebuilt binaries or fail
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => logLlamaMessage(logger, level, message),
    });
  } catch (err) {
    throw new AppError(
      'unavailable',
      `llama-cpp: cannot load the "${gpu}" backend: ${err instanceof Error ? err.message : String(err)}`,
      { code: 'backend_unavailable', cause: err },
    );
  }
}

function logLlamaMessage(logger: Logger, level: LlamaLogLevel, message: string): void {
  const text = message.trimEnd();
  if (text === '') return;
  switch (level) {
    case LlamaLogLevel.fatal:
    case LlamaLogLevel.error:
      logger.error({ source: 'llama.cpp' }, text);
      return;
    case LlamaLogLevel.warn:
      logger.warn({ source: 'llama.cpp' }, text);
      return;
    case LlamaLogLevel.info:
    case LlamaLogLevel.log:
      logger.info({ source: 'llama.cpp' }, text);
      return;
    default:
      logger.debug({ source: 'llama.cpp' }, text);
  }
}

export async function detectHardware(llama: Llama): Promise<LlamaHardware> {
  return {
    gpu: llama.gpu,
    gpuDevices: llama.gpu === false ? [] : await llama.getGpuDeviceNames(),
    cpuFeatures: llama.systemInfo.trim(),
  };
}

export function noHardware(): LlamaHardware {
  return { gpu: false, gpuDevices: [], cpuFeatures: '' };
}
