/**
 * InferenceService implementation: admission, the engine stream mapped to proto messages,
 * embeddings (under the same admission), load signals (EWMA tokens/s and TTFT) and draining.
 * Engines live in engines/, one folder each.
 *
 * This is where the sampling defaults are applied (lib/chat/sampling.ts): a request without
 * temperature / top_p gets them here, so every engine samples the same way whoever called.
 */
import { recordTokens, type InferenceMetrics } from './metrics.js';
import type { CallContext } from 'nice-grpc';
import type { Logger } from 'pino';
import {
  HardwareClass,
  type EmbedRequest,
  type EmbedResponse,
  type GenerateRequest,
  type GenerateResponse,
  type InferenceServiceImplementation,
  type ServedModel,
  type WorkerStatus,
} from '../../../gen/xerotier/inference/v1/inference_service.js';
import { randomUUID } from 'node:crypto';
import { AppError, invalidRequest } from '../../../lib/errors/app-error.js';
import type { RequestContext } from '../../../lib/grpc/server.js';
import type { Admission } from './admission.js';
import { finishReasonToProto } from '../../../lib/chat/finish-reasons.js';
import type { Engine, EngineEvent } from './engines/engine.js';
import { coalesceDeltas } from './coalesce-deltas.js';
import { GenerateChannels } from './calls/generate-channel.js';
import type { GrpcServerMetrics } from '../../../lib/metrics/grpc.js';
import { toGenerateParams } from './generate-params.js';
import { createReasoningSplitter, type SplitText } from '../../../lib/chat/reasoning.js';

export interface InferenceServiceDeps {
  engine: Engine;
  /** The models served, by platform model id (model-id.ts); the first one names the generations. */
  models: () => ServedModel[];
  admission: Admission;
  workerId: string;
  hardwareClass: HardwareClass;
  hardwareDescription: () => string;
  metrics?: Pick<InferenceMetrics, 'timeToFirstToken' | 'tokensTotal'> | undefined;
  /** Counts each generation that arrives on a GenerateChannel as a Generate call. */
  callMetrics?: GrpcServerMetrics | undefined;
  /** Label for metrics (the hardware class name). */
  pool?: string | undefined;
  /**
   * The process logger: its level decides whether the per-call "ended" debug lines are written at
   * all. They go through the call's child logger, which lib/grpc/server.ts makes on first use; a
   * pino child (bindings serialized, redaction paths compiled) costs a generation about 2 KB of
   * garbage and its CPU, so it is not made just to drop a debug line.
   */
  logger: Pick<Logger, 'isLevelEnabled'>;
}

export interface InferenceService {
  impl: InferenceServiceImplementation<RequestContext>;
  status(): WorkerStatus;
  /** Stops admitting; resolves when running generations have finished. */
  drain(): Promise<void>;
}

const EWMA_ALPHA = 0.2;
/** A status stream sends at most one update per this many ms (bursts of changes are coalesced). */
const COALESCE_MS = 50;
/** OpenAI's bound on one embeddings request. */
const MAX_EMBED_INPUTS = 2048;

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
      models: deps.models(),
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
    const params = toGenerateParams(request, engine);
    const release = await admission.acquire(context.signal);
    notify();
    const started = performance.now();
    let firstTokenAt: number | undefined;
    let tokens = 0;
    try {
      const info = engine.info();
      const offered = params.toolChoice?.mode === 'none' ? [] : (params.tools ?? []);
      const promptTokens = await engine.countPromptTokens(params.messages, offered, params.prompt);
      // The engine's first step (an upstream request) starts before the start message is
      // written, so that message's encoding and write overlap the engine's wait instead of
      // preceding it. Its failure is handled where it is awaited, after the start message.
      const events = engine.generate(params, context.signal)[Symbol.asyncIterator]();
      let step: Promise<IteratorResult<EngineEvent>> | undefined = events.next();
      step.catch(() => undefined);
      let engineDone = false;
      try {
        yield { start: { model: deps.models()[0]?.id ?? info.model, systemFingerprint: info.fingerprint, workerId: deps.workerId, promptTokens } };
        const reasoning = createReasoningSplitter();
        let heldTokens = 0;
        for (;;) {
          const next = await (step ?? events.next());
          step = undefined;
          if (next.done === true) {
            engineDone = true;
            break;
          }
          const event = next.value;
          if (event.type === 'delta') {
            firstTokenAt ??= performance.now();
            tokens += event.tokenCount;
            const split = reasoning.push(event.text);
            const delta = toDelta(split, event, heldTokens);
            heldTokens = delta === undefined ? heldTokens + event.tokenCount : 0;
            if (delta) yield { delta };
          } else {
            const rest = toDelta(reasoning.end(), { tokenCount: 0 }, heldTokens);
            if (rest) yield { delta: rest };
            if (deps.metrics) recordTokens(deps.metrics, event.usage);
            yield { final: toFinal(event) };
            return;
          }
        }
        throw new AppError('internal', 'engine ended without a final event');
      } finally {
        // As `for await` would: an engine left before its end is ended (its cleanup runs), after
        // a step still in flight.
        if (!engineDone) {
          if (step) await step.catch(() => undefined);
          await events.return?.(undefined);
        }
      }
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
      if (deps.logger.isLevelEnabled('debug')) context.logger.debug({ tokens, ms: Math.round(performance.now() - started) }, 'generation ended');
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
      if (deps.logger.isLevelEnabled('debug')) {
        context.logger.debug({ inputs: request.inputs.length, ms: Math.round(performance.now() - started) }, 'embedding ended');
      }
    }
  }

  /**
   * The status at once, then whenever it changes (at most one update per {@link COALESCE_MS}:
   * bursts of changes are coalesced) and at least every `intervalMs`. Between updates the stream
   * sleeps until a change or the interval is due, so an idle worker wakes once per interval.
   */
  async function* watchStatus(
    request: { intervalMs: number },
    context: CallContext,
  ): AsyncGenerator<{ status: WorkerStatus }> {
    const interval = request.intervalMs > 0 ? request.intervalMs : 1000;
    const { signal } = context;
    let changed = true;
    let wake: (() => void) | undefined;
    const listener = (): void => {
      changed = true;
      wake?.();
    };
    /** Resolves after `ms`, on abort, or (when `onChange`) at the next change. */
    const sleep = (ms: number, onChange: boolean): Promise<void> =>
      new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          wake = undefined;
          resolve();
        };
        const timer = setTimeout(done, ms);
        signal.addEventListener('abort', done, { once: true });
        if (onChange) wake = done;
      });
    changeListeners.add(listener);
    try {
      let last = 0;
      while (!signal.aborted) {
        const now = performance.now();
        if (changed || now - last >= interval) {
          changed = false;
          last = now;
          yield { status: status() };
          await sleep(COALESCE_MS, false);
        } else {
          await sleep(last + interval - now, true);
        }
      }
    } finally {
      changeListeners.delete(listener);
    }
  }

  const generateOne = (request: GenerateRequest, context: CallContext & RequestContext) => coalesceDeltas(generate(request, context));
  const channels = new GenerateChannels(generateOne, deps.callMetrics);
  return {
    impl: {
      generate: generateOne,
      generateChannel: (requests, context) => channels.serve(requests, context),
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
      }).then(() => channels.close());
    },
  };
}

/** A delta for what the splitter let through (undefined when it held everything back). */
function toDelta(split: SplitText, event: Pick<Extract<EngineEvent, { type: 'delta' }>, 'tokenCount' | 'toolCalls' | 'reasoning'>, heldTokens: number) {
  const toolCalls = event.toolCalls ?? [];
  const reasoning = (event.reasoning ?? '') + split.reasoning;
  if (split.content === '' && reasoning === '' && toolCalls.length === 0) return undefined;
  return {
    text: split.content,
    tokenCount: event.tokenCount + heldTokens,
    toolCalls: toolCalls.map((c) => ({ index: c.index, id: c.id ?? '', name: c.name ?? '', arguments: c.arguments })),
    reasoning,
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
