/**
 * Demo seed: on first start, project `demo` with endpoints `chat` and `embeddings` (same model,
 * same tier) and one key (inference + management) that reaches both. The key goes to a 0600
 * file — never to the logs — which is how `npm start` shows it. Later starts rotate nothing: a
 * missing file only produces a log line; a demo project seeded before embeddings existed gets
 * its `embeddings` endpoint added.
 */
import { existsSync, chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { EndpointKind, Scope } from '../../../gen/xerotier/auth/v1/auth_service.js';
import { isAppError } from '../../../lib/errors/app-error.js';
import type { AuthService } from './auth-service.js';
import type { AuthStore } from './stores/store.js';

export const DEMO = {
  project: 'demo',
  projectName: 'Demo project',
  endpoint: 'chat',
  embeddingsEndpoint: 'embeddings',
  tier: 'cpu_standard',
  hardwarePool: 'cpu',
  model: 'smollm2-135m-instruct',
  contextWindow: 2048,
  keyName: 'demo',
} as const;

export type SeedOutcome = 'seeded' | 'exists';

export async function seedDemo(
  deps: { service: AuthService; store: AuthStore; logger: Logger },
  keyFile: string,
): Promise<SeedOutcome> {
  const { service, store, logger } = deps;
  const existing = await store.findProject(DEMO.project);
  if (existing) {
    if (!(await store.findEndpoint(existing.id, DEMO.embeddingsEndpoint))) {
      await createEmbeddingsEndpoint(service).catch((err: unknown) => {
        // Another replica added it first (unique slug): nothing to do.
        if (!(isAppError(err) && err.code === 'endpoint_exists')) throw err;
      });
      logger.info({ endpoint: DEMO.embeddingsEndpoint }, 'demo project: embeddings endpoint added');
    }
    if (existsSync(keyFile)) {
      logger.info({ keyFile }, 'demo project present; demo key file present');
    } else {
      logger.warn(
        { keyFile },
        'demo project present but the demo key file is missing; no key was rotated (create one with `xero keys create demo`)',
      );
    }
    return 'exists';
  }
  try {
    await service.createProject({ slug: DEMO.project, name: DEMO.projectName });
  } catch (err) {
    // Another replica seeded first (unique slug): nothing to do.
    if (isAppError(err) && err.code === 'project_exists') return 'exists';
    throw err;
  }
  await service.createEndpoint({
    project: DEMO.project,
    slug: DEMO.endpoint,
    tier: DEMO.tier,
    model: DEMO.model,
    hardwarePool: DEMO.hardwarePool,
    contextWindow: DEMO.contextWindow,
    kind: EndpointKind.ENDPOINT_KIND_CHAT,
  });
  await createEmbeddingsEndpoint(service);
  const { apiKey, secret } = await service.createApiKey({
    project: DEMO.project,
    name: DEMO.keyName,
    scopes: [Scope.SCOPE_INFERENCE, Scope.SCOPE_MANAGEMENT],
    endpointSlug: '',
    expireTime: undefined,
  });
  writeSecretFile(keyFile, `${secret}\n`);
  logger.info({ keyFile, keyId: apiKey?.id, prefix: apiKey?.prefix }, 'demo project seeded; demo key written to file');
  return 'seeded';
}

function createEmbeddingsEndpoint(service: AuthService) {
  return service.createEndpoint({
    project: DEMO.project,
    slug: DEMO.embeddingsEndpoint,
    tier: DEMO.tier,
    model: DEMO.model,
    hardwarePool: DEMO.hardwarePool,
    contextWindow: DEMO.contextWindow,
    kind: EndpointKind.ENDPOINT_KIND_EMBEDDINGS,
  });
}

/** Writes a file readable by its owner only, creating its directory. */
export function writeSecretFile(file: string, content: string): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
  writeFileSync(file, content, { mode: 0o600 });
  // `mode` applies only when the file is created; tighten an existing one too.
  chmodSync(file, 0o600);
}
