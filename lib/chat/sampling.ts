/**
 * Sampling defaults: what a request that names no temperature / top_p gets. The inference worker
 * owns them (it fills absent values before the engine runs, see services/inference), so every
 * engine — llama.cpp, an OpenAI-compatible upstream, the simulator — samples the same way for
 * the same request, whatever client sent it. docs/decisions.md records why.
 */
export const SAMPLING_DEFAULTS = { temperature: 0.7, topP: 0.9 } as const;

export interface SamplingRequest {
  temperature?: number | undefined;
  topP?: number | undefined;
}

/** The request's own values where it has them, the defaults elsewhere. */
export function withSamplingDefaults(request: SamplingRequest): { temperature: number; topP: number } {
  return {
    temperature: request.temperature ?? SAMPLING_DEFAULTS.temperature,
    topP: request.topP ?? SAMPLING_DEFAULTS.topP,
  };
}
