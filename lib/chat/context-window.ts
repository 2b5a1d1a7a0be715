/**
 * Context windows: which one wins, and how much of it a completion may use.
 *
 * Two numbers describe a context window: the endpoint's configured `contextWindow` (auth; what
 * the operator promises for that endpoint) and the worker's actual one (the engine's context,
 * reported in WorkerStatus.context_window). The smaller wins: a worker cannot hold more than its
 * context, and an endpoint never offers more than it was configured for. A value of 0 means
 * "not known" (e.g. a model still loading) and does not take part.
 */
import { invalidRequest } from '../errors/app-error.js';

export function effectiveContextWindow(configured: number, actual: number): number {
  if (configured > 0 && actual > 0) return Math.min(configured, actual);
  return Math.max(configured, actual, 0);
}

/**
 * Completion tokens left after the prompt. A prompt that leaves no room for one completion token
 * is the caller's error (400 `context_length_exceeded` on `messages`, or `prompt` for a legacy
 * completion).
 */
export function completionRoom(contextWindow: number, promptTokens: number, param: 'messages' | 'prompt' = 'messages'): number {
  if (promptTokens >= contextWindow) {
    throw invalidRequest(
      `This model's maximum context length is ${contextWindow} tokens, but the ${param} use ` +
        `${promptTokens} tokens, leaving no room for a completion. Shorten the ${param}.`,
      { code: 'context_length_exceeded', param },
    );
  }
  return contextWindow - promptTokens;
}

/** max_tokens clamped to the room left: an omitted or too large value becomes the room. */
export function clampMaxTokens(requested: number | undefined, room: number): number {
  return Math.min(requested ?? room, room);
}
