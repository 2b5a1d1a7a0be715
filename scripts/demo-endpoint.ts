/**
 * `npm start`'s demo endpoint names the model its worker actually serves: SmolLM2 when it could be
 * had, the built-in tiny test model when `npm start` fell back to it (offline, nothing cached),
 * whatever LLAMA_MODEL or the upstream is otherwise. Once the worker is ready this asks it which
 * platform model id it advertises, points the demo endpoints (chat and embeddings) at that id when it names another one
 * (a previous run served a different model), and waits until the gateway answers with it (its
 * auth cache holds the endpoint for up to GATEWAY_AUTH_CACHE_TTL_MS).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { AuthServiceDefinition } from '../gen/xerotier/auth/v1/auth_service.js';
import { InferenceServiceDefinition } from '../gen/xerotier/inference/v1/inference_service.js';
import { callOptions, createAppClient, createGrpcChannel } from '../lib/grpc/client.js';

export interface DemoEndpointOptions {
  authAddress: string;
  inferenceAddress: string;
  serviceToken: string | undefined;
  /** GET …/v1/models of the demo endpoint through the gateway. */
  modelsUrl: string;
  demoKey: string;
  project: string;
  endpoint: string;
  logger: Logger;
}

/** Returns the model id the demo endpoint serves now, or undefined when it could not be aligned. */
export async function alignDemoEndpoint(options: DemoEndpointOptions): Promise<string | undefined> {
  const { logger } = options;
  const inferenceChannel = createGrpcChannel(options.inferenceAddress);
  const authChannel = createGrpcChannel(options.authAddress);
  try {
    const worker = createAppClient(InferenceServiceDefinition, inferenceChannel, {
      address: options.inferenceAddress,
      target: 'inference worker',
      serviceToken: options.serviceToken,
    });
    const auth = createAppClient(AuthServiceDefinition, authChannel, {
      address: options.authAddress,
      target: 'auth',
      serviceToken: options.serviceToken,
    });
    const { status } = await worker.getStatus({}, { ...callOptions('start-demo-model'), deadline: 2000 });
    const served = status?.models[0]?.id;
    if (!served) return undefined;
    const { endpoints } = await auth.listEndpoints({ project: options.project }, { ...callOptions('start-demo-model'), deadline: 2000 });
    if (!endpoints.some((e) => e.slug === options.endpoint)) return undefined;
    // Every demo endpoint (chat and embeddings) is served by the one local worker.
    for (const demo of endpoints) {
      if (demo.model === served) continue;
      await auth.setEndpointModel(
        { project: options.project, endpoint: demo.slug, model: served },
        { ...callOptions('start-demo-model'), deadline: 2000 },
      );
      logger.info({ endpoint: `${options.project}/${demo.slug}`, model: served, previous: demo.model }, 'the demo endpoint now names the model the worker serves');
    }
    // The gateway caches the endpoint with the key (≤ 5 s): wait until it names the new model.
    for (let i = 0; i < 40; i++) {
      const listed = await fetch(options.modelsUrl, { headers: { authorization: `Bearer ${options.demoKey}` } }).then(
        async (r) => (r.ok ? ((await r.json()) as { data: Array<{ id: string }> }).data[0]?.id : undefined),
        () => undefined,
      );
      if (listed === served) return served;
      await sleep(250);
    }
    return undefined;
  } catch (err) {
    logger.warn({ err }, 'could not align the demo endpoint with the served model');
    return undefined;
  } finally {
    inferenceChannel.close();
    authChannel.close();
  }
}
