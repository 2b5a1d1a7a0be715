/**
 * The inference service's modules of a checkout (its admission, its `Generate` service and the
 * generated request type), loaded from that checkout's sources into this process, so a
 * benchmark can run two checkouts' services side by side under the same load and warm JIT.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export interface ServiceMessage {
  delta?: { tokenCount: number } | undefined;
}

export interface InferenceServiceModules {
  createAdmission(capacity: number, queueCapacity: number): unknown;
  createInferenceService(deps: unknown): { impl: { generate(request: unknown, context: unknown): AsyncIterable<ServiceMessage> } };
  GenerateRequest: { fromPartial(o: unknown): unknown };
  Role: { ROLE_USER: number };
}

/** `mod(file)` imports `file` of the checkout at `dir`; the service's modules come with it. */
export async function loadInferenceServiceModules(
  dir: string,
): Promise<InferenceServiceModules & { mod: <T>(file: string) => Promise<T> }> {
  const mod = async <T>(file: string): Promise<T> => (await import(pathToFileURL(path.join(dir, file)).href)) as T;
  const { createAdmission } = await mod<Pick<InferenceServiceModules, 'createAdmission'>>('services/inference/src/admission.ts');
  const { createInferenceService } = await mod<Pick<InferenceServiceModules, 'createInferenceService'>>('services/inference/src/inference-service.ts');
  const { GenerateRequest, Role } = await mod<Pick<InferenceServiceModules, 'GenerateRequest' | 'Role'>>('gen/xerotier/inference/v1/inference_service.ts');
  return { mod, createAdmission, createInferenceService, GenerateRequest, Role };
}
