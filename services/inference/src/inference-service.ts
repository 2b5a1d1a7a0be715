/**
 * InferenceService implementation: admission, the engine stream mapped to proto messages,
 * embeddings (under the same admission), load signals (EWMA tokens/s and TTFT) and draining.
 * Engines live in engines/, one folder each.
 *
 * This is where the sampling defaults are applied (lib/chat/sampling.ts): a request without
 * temperature / top_p gets them here, so every engine samples the same way whoever called.
 */
import { recordTokens, type InferenceMetrics } from './metrics.js';
import { randomUUID } from 'node:crypto';
import { delay } from 'abort-controller-x';
import type { CallContext } from 'nice-grpc';
import {
  HardwareClass,
  type ChatMessage as ProtoChatMessage,
  type EmbedRequest,
  type EmbedResponse,
  type GenerateRequest,
  type GenerateResponse,
  type InferenceServiceImplementation,
  type WorkerStatus,
} from '../../../gen/xerotier/inference/v1/inference_service.js';
import { AppError, invalidRequest } from '../../../lib/errors/app-error.js';
import type { RequestContext } from '../../../lib/grpc/server.js';
import type { Admission } from './admission.js';
import { finishReasonToProto } from '../../../lib/chat/finish-reasons.js';
import { roleFromProto } from '../../../lib/chat/roles.js';
import { withSamplingDefaults } from '../../../lib/chat/sampling.js';
import type { ChatMessage, Engine, EngineEvent } from './engines/engine.js';

export interface InferenceServiceDeps {
  engine: Engine;
  admission: Admission;
  workerId: string;
  hardwareClass: HardwareClass;
  hardwareDescription: () => string;
  metrics?: Pick<InferenceMetrics, 'timeToFirstToken' | 'tokensTotal'> | undefined;
  /** Label for metrics (the hardware class name). */
  pool?: string | undefined;
}

export interface InferenceService {
  impl: InferenceServiceImplementation<RequestContext>;
  status(): WorkerStatus;
  /** Stops admitting; resolves when running generations have finished. */
  drain(): Promise<void>;
}

const EWMA_ALPHA = 0.2;
/** OpenAI's bound on one embeddings request. */
const MAX_EMBED_INPUTS = 2048;

export function toEngineMessages(messages: ProtoChatMessage[]): ChatMessage[] {
  if (messages.length === 0) throw invalidRequest('messages must not be empty', { param: 'messages' });
  return messages.map((m, i) => {
    const role = roleFromProto(m.role);
    if (!role) throw invalidRequest(`messages[${i}].role is not supported`, { param: `messages[${i}].role` });
    return { role, content: m.content, ...(m.name ? { name: m.name } : {}) };
  });
}

export function createInferenceService(deps: InferenceServiceDeps): InferenceService {
  const { engine, admission } = deps;
  let draining = false;
  let tokensPerSecond = 0;
  let ttftMs = 0;
  let drainWaiters: Array<() => void> = [];
  const changeListeners = new Set<() => void>();
  const notify = (): void => changeListeners.forEach((l) => l());

  const status = (): WorkerStatus => {
    const info = engine.info();
    return {
      workerId: deps.workerId,
      hardwareClass: deps.hardwareClass,
      engine: info.engine,
      model: info.model,
      modelLoaded: engine.ready(),
      inFlightCount: admission.inFlight(),
      queuedCount: admission.queued(),
      capacity: admission.capacity,
      queueCapacity: admission.queueCapacity,
      tokensPerSecond,
      timeToFirstTokenMs: ttftMs,
      draining,
      hardwareDescription: deps.hardwareDescription(),
      contextWindow: info.contextWindow,
    };
  };

  const settleDrain = (): void => {
    if (admission.inFlight() === 0 && admission.queued() === 0) {
      drainWaiters.forEach((w) => w());
      drainWaiters = [];
    }
  };

  async function* generate(
    request: GenerateRequest,
    context: CallContext & RequestContext,
  ): AsyncGenerator<GenerateResponse> {
    if (draining) {
      throw new AppError('unavailable', 'The worker is shutting down.', { code: 'worker_draining', retryAfterSeconds: 1 });
    }
    if (!engine.ready()) {
      throw new AppError('unavailable', 'The model is still loading.', { code: 'model_loading', retryAfterSeconds: 5 });
    }
    if (request.stop.length > 4) throw invalidRequest('at most 4 stop sequences', { param: 'stop' });
    // A legacy completion's raw prompt replaces the conversation.
    const prompt = request.prompt;
    if (prompt !== undefined && request.messages.length > 0) {
      throw invalidRequest('a generation has either messages or a prompt, not both', { param: 'prompt' });
    }
    const messages = prompt === undefined ? toEngineMessages(request.messages) : [];
    const release = await admission.acquire(context.signal);
    notify();
    const started = performance.now();
    let firstTokenAt: number | undefined;
    let tokens = 0;
    try {
      const info = engine.info();
      const promptTokens = await engine.countPromptTokens(messages, prompt);
      yield { start: { model: info.model, systemFingerprint: info.fingerprint, workerId: deps.workerId, promptTokens } };
      const params = {
        requestId: request.requestId || randomUUID(),
        messages,
        maxTokens: request.maxTokens,
        ...withSamplingDefaults({ temperature: request.temperature, topP: request.topP }),
        seed: request.seed,
        stop: request.stop,
        ...(prompt === undefined ? {} : { prompt }),
      };
      for await (const event of engine.generate(params, context.signal)) {
        if (event.type === 'delta') {
          firstTokenAt ??= performance.now();
          tokens += event.tokenCount;
          yield { delta: { text: event.text, tokenCount: event.tokenCount } };
        } else {
          if (deps.metrics) recordTokens(deps.metrics, event.usage);
          yield { final: toFinal(event) };
          return;
        }
      }
      throw new AppError('internal', 'engine ended without a final event');
    } finally {
      release();
      if (firstTokenAt !== undefined) {
        ttftMs = ewma(ttftMs, firstTokenAt - started);
        deps.metrics?.timeToFirstToken.observe({ pool: deps.pool ?? 'unknown' }, (firstTokenAt - started) / 1000);
        const decodeSeconds = (performance.now() - firstTokenAt) / 1000;
        if (tokens > 1 && decodeSeconds > 0) tokensPerSecond = ewma(tokensPerSecond, (tokens - 1) / decodeSeconds);
      }
      notify();
      if (draining) settleDrain();
      context.logger.debug({ tokens, ms: Math.round(performance.now() - started) }, 'generation ended');
    }
  }

  async function embed(request: EmbedRequest, context: CallContext & RequestContext): Promise<EmbedResponse> {
    if (draining) {
      throw new AppError('unavailable', 'The worker is shutting down.', { code: 'worker_draining', retryAfterSeconds: 1 });
    }
    if (!engine.ready()) {
      throw new AppError('unavailable', 'The model is still loading.', { code: 'model_loading', retryAfterSeconds: 5 });
    }
    if (request.inputs.length === 0 || request.inputs.length > MAX_EMBED_INPUTS) {
      throw invalidRequest(`input must hold 1 to ${MAX_EMBED_INPUTS} texts`, { param: 'input' });
    }
    if (request.inputs.some((text) => text.length === 0)) throw invalidRequest('input must not contain empty strings', { param: 'input' });
    if (request.dimensions !== undefined && request.dimensions < 1) throw invalidRequest('dimensions must be at least 1', { param: 'dimensions' });
    const release = await admission.acquire(context.signal);
    notify();
    const started = performance.now();
    try {
      const info = engine.info();
      const result = await engine.embed(
        { requestId: request.requestId || randomUUID(), inputs: request.inputs, dimensions: request.dimensions },
        context.signal,
      );
      if (deps.metrics) recordTokens(deps.metrics, { promptTokens: result.promptTokens, completionTokens: 0 });
      return {
        model: info.model,
        workerId: deps.workerId,
        embeddings: result.embeddings.map((values) => ({ values })),
        promptTokens: result.promptTokens,
      };
    } finally {
      release();
      notify();
      if (draining) settleDrain();
      context.logger.debug({ inputs: request.inputs.length, ms: Math.round(performance.now() - started) }, 'embedding ended');
    }
  }

  async function* watchStatus(
    request: { intervalMs: number },
    context: CallContext,
  ): AsyncGenerator<{ status: WorkerStatus }> {
    const interval = request.intervalMs > 0 ? request.intervalMs : 1000;
    let changed = true;
    const listener = (): void => {
      changed = true;
    };
    changeListeners.add(listener);
    try {
      let last = 0;
      while (!context.signal.aborted) {
        const now = performance.now();
        if (changed || now - last >= interval) {
          changed = false;
          last = now;
          yield { status: status() };
        }
        // Coalesce bursts of changes: at most one update per 50 ms.
        await delay(context.signal, 50).catch(() => undefined);
      }
    } finally {
      changeListeners.delete(listener);
    }
  }

  return {
    impl: {
      generate,
      embed,
      getStatus: async () => ({ status: status() }),
      watchStatus,
    },
    status,
    drain() {
      draining = true;
      notify();
      return new Promise<void>((resolve) => {
        drainWaiters.push(resolve);
        settleDrain();
      });
    },
  };
}

function toFinal(event: Extract<EngineEvent, { type: 'final' }>) {
  return {
    finishReason: finishReasonToProto[event.finishReason],
    usage: { promptTokens: event.usage.promptTokens, completionTokens: event.usage.completionTokens },
  };
}

function ewma(previous: number, sample: number): number {
  return previous === 0 ? sample : previous * (1 - EWMA_ALPHA) + sample * EWMA_ALPHA;
}
