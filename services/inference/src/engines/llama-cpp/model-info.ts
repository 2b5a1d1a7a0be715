/** What the llama-cpp engine tells clients and operators about its model (EngineInfo). */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Llama, LlamaContext, LlamaModel } from 'node-llama-cpp';
import type { EngineInfo } from '../engine.js';
import type { LlamaHardware } from './backend.js';

const MAX_DEFAULT_CONTEXT = 4096;

/** Context window per sequence when none is configured: the model's training context, at most 4096. */
export function defaultContextSize(model: LlamaModel): number {
  const trained = model.trainContextSize;
  return trained > 0 ? Math.min(trained, MAX_DEFAULT_CONTEXT) : MAX_DEFAULT_CONTEXT;
}

export async function describeLoadedModel(args: {
  modelName: string | undefined;
  modelFile: string;
  model: LlamaModel;
  context: LlamaContext;
  llama: Llama;
  hardware: LlamaHardware;
  threads: number;
}): Promise<EngineInfo> {
  const { modelName, modelFile, model, context, llama, hardware, threads } = args;
  const { size } = await stat(modelFile);
  const ggufName = model.fileInfo.metadata.general?.name;
  const device = hardware.gpu === false ? 'cpu' : hardware.gpu;
  const devices = hardware.gpuDevices.length > 0 ? ` [${hardware.gpuDevices.join(', ')}]` : '';
  return {
    engine: 'llama-cpp',
    model: modelName ?? (ggufName !== undefined && ggufName !== '' ? ggufName : fileStem(modelFile)),
    fingerprint: fingerprint(modelFile, size),
    contextWindow: context.contextSize, // per sequence
    backend:
      `llama.cpp ${llama.llamaCppRelease.release} ${device}${devices}, ` +
      `${threads} threads, ${context.totalSequences} sequences`,
  };
}

/** Before start(): what we know from the options alone. */
export function pendingInfo(opts: { modelPath: string; modelName?: string | undefined; contextSize?: number | undefined }): EngineInfo {
  return {
    engine: 'llama-cpp',
    model: opts.modelName ?? fileStem(opts.modelPath),
    fingerprint: 'fp_llamacpp_pending',
    contextWindow: opts.contextSize ?? 0,
    backend: 'llama.cpp (not loaded)',
  };
}

/** Same file name and size → same fingerprint; cheap, and changes when the model file does. */
function fingerprint(modelFile: string, size: number): string {
  const hash = createHash('sha256').update(`${basename(modelFile)}:${size}`).digest('hex');
  return `fp_llamacpp_${hash.slice(0, 10)}`;
}

function fileStem(path: string): string {
  return basename(path).replace(/\.gguf$/i, '');
}
