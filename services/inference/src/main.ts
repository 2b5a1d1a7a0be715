/** Composition root of an inference worker process: environment, logger, engine, signals (runProcess). */
import { createLogger } from '../../../lib/logging/logger.js';
import { runProcess } from '../../../lib/process/run.js';
import { startInferenceWorker } from './start.js';
import { loadInferenceConfig } from './config.js';
import { createEngine } from './engines/create-engine.js';

await runProcess('inference', async () => {
  const config = loadInferenceConfig(process.env);
  const logger = createLogger(`inference-${config.INFERENCE_HARDWARE_CLASS}`, config.LOG_LEVEL);
  const { engine, gpu } = await createEngine(config, logger);
  const worker = await startInferenceWorker(config, { logger, engine, gpu });
  worker.ready.catch((err: unknown) => {
    logger.fatal({ err }, 'engine failed to start');
    process.exitCode = 1;
    void worker.stop();
  });
  return { logger, stop: () => worker.stop() };
});
