/**
 * The platform model id a worker advertises (registry record and WorkerStatus.models): the name
 * endpoints use for a model, and the only name clients see. `INFERENCE_MODEL_ID` sets it; without
 * it the id is derived from what the engine loaded:
 * - llama-cpp: the model's name (LLAMA_MODEL_NAME, else the GGUF's general.name, else the file
 *   name) lowercased, without a `.gguf` extension or a trailing quantization tag, runs of spaces
 *   and underscores turned into `-`: `SmolLM2-135M-Instruct-Q8_0.gguf` and "SmolLM2 135M
 *   Instruct" both give `smollm2-135m-instruct`;
 * - openai: the upstream's model id as it reports it (already a canonical name);
 * - simulator: `simulator` (it says what it is).
 */
import type { EngineInfo } from './engines/engine.js';

/** Same rule as an endpoint's model name (auth). */
export const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$/;

/** A trailing llama.cpp quantization tag: Q8_0, Q4_K_M, IQ3_XXS, F16, BF16, … */
const QUANT_SUFFIX = /[-_. ](?:i?q\d+(?:_[a-z0-9]+)*|bf16|f16|f32)$/;

export function servedModelId(info: Pick<EngineInfo, 'engine' | 'model'>, configured: string | undefined): string {
  if (configured) return configured;
  if (info.engine !== 'llama-cpp') return info.model;
  const id = info.model
    .toLowerCase()
    .replace(/\.gguf$/, '')
    .replace(QUANT_SUFFIX, '')
    .replace(/[\s_]+/g, '-')
    .replace(/[^a-z0-9._:/@+-]/g, '')
    .replace(/^[^a-z0-9]+/, '');
  return id === '' ? 'model' : id;
}
