/**
 * A real inference worker (gRPC, port chosen by the OS) whose engine is the simulator (2 tokens
 * per answer, no delays) recording the parameters every `Generate` hands it, so a test can check
 * what reached the engine. Not inference: the simulator stands in for an engine in these tests.
 */
import { pino } from 'pino';
import { loadInferenceConfig } from '../../services/inference/src/config.js';
import type { Engine, GenerateParams } from '../../services/inference/src/engines/engine.js';
import { createSimulatorEngine } from '../../services/inference/src/engines/simulator/simulator-engine.js';
import { startInferenceWorker, type InferenceWorker } from '../../services/inference/src/start.js';

export interface RecordingWorker {
  worker: InferenceWorker;
  /** What the engine was handed, oldest first. */
  seen: GenerateParams[];
  /** The simulator behind the recording engine (to build other engines from it). */
  simulator: Engine;
}

export async function startRecordingWorker(contextWindow: number): Promise<RecordingWorker> {
  const seen: GenerateParams[] = [];
  const simulator = createSimulatorEngine({
    tokensPerSecond: 0,
    timeToFirstTokenMs: 0,
    responseTokens: 2,
    contextWindow,
    failAfterTokens: 0,
    hangAfterTokens: 0,
    crashAfterTokens: 0,
  });
  const recording: Engine = {
    ...simulator,
    generate(params, signal) {
      seen.push(params);
      return simulator.generate(params, signal);
    },
  };
  const worker = await startInferenceWorker(loadInferenceConfig({ INFERENCE_PORT: '0', INFERENCE_DRAIN_GRACE_MS: '100' }), {
    logger: pino({ level: 'silent' }),
    engine: recording,
  });
  await worker.ready;
  return { worker, seen, simulator };
}
