/**
 * The two direct paths of bench/llama.ts, both in this process:
 *  - raw: node-llama-cpp only. `getLlama({gpu: false, build: 'never'})`, one context with PARALLEL
 *    sequences and the same threads/context size as the engine, the prompt rendered with the
 *    model's chat wrapper the way the engine renders it (before the clock starts), then
 *    `LlamaCompletion.generateCompletionWithMeta` with the engine's sampling options.
 *  - engine: our `createLlamaCppEngine(...).generate()`.
 */
import { LlamaCompletion, LlamaLogLevel, getLlama, resolveChatWrapper, type LlamaText, type Token } from 'node-llama-cpp';
import { createLogger } from '../../lib/logging/logger.js';
import type { ChatMessage } from '../../services/inference/src/engines/engine.js';
import { createLlamaCppEngine } from '../../services/inference/src/engines/llama-cpp/llama-cpp-engine.js';
import { toChatHistory } from '../../services/inference/src/engines/llama-cpp/prompt.js';
import { PARALLEL, REQUEST_TIMEOUT_MS, decodeRate, messagesFor, type PathHandle, type Runner } from './measure.js';

/** node-llama-cpp stop reasons in the API's words (as the engine maps them). */
const FINISH: Record<string, string> = {
  maxTokens: 'length',
  eogToken: 'stop',
  stopGenerationTrigger: 'stop',
  customStopTrigger: 'stop',
  abort: 'cancelled',
};

/** Path 1: node-llama-cpp only (the floor). */
export async function startRawDirect(modelPath: string, maxTokens: number, threads: number): Promise<PathHandle> {
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.warn });
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  // The engine's defaults: context min(training context, 4096), `parallel` sequences, same threads.
  const trained = model.trainContextSize;
  const context = await model.createContext({
    contextSize: trained > 0 ? Math.min(trained, 4096) : 4096,
    sequences: PARALLEL,
    threads,
  });
  const sequences = Array.from({ length: PARALLEL }, () => context.getSequence());
  const wrapper = resolveChatWrapper(model);
  // Rendered exactly as the engine renders a chat (llama-cpp.ts renderPrompt), before timing.
  const render = (messages: ChatMessage[]): { tokens: Token[]; stops: LlamaText[] } => {
    const { contextText, stopGenerationTriggers } = wrapper.generateContextState({ chatHistory: toChatHistory(messages) });
    const tokens = contextText.tokenize(model.tokenizer);
    const bos = model.tokens.bos;
    const strip = model.tokens.shouldPrependBosToken && bos !== null && tokens[0] === bos;
    return { tokens: strip ? tokens.slice(1) : tokens, stops: stopGenerationTriggers };
  };
  const run: Runner = async (index, slot) => {
    const sequence = sequences[slot];
    if (sequence === undefined) throw new Error(`no sequence for slot ${slot}`);
    const prompt = render(messagesFor(index));
    const completion = new LlamaCompletion({ contextSequence: sequence });
    const before = sequence.tokenMeter.usedOutputTokens;
    let tFirst: number | undefined;
    let text = '';
    const start = performance.now();
    try {
      const result = await completion.generateCompletionWithMeta(prompt.tokens, {
        maxTokens,
        temperature: 0,
        topK: 0,
        topP: 1,
        repeatPenalty: false,
        customStopTriggers: prompt.stops,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        onTextChunk: (chunk) => {
          if (chunk !== '' && tFirst === undefined) tFirst = performance.now();
          text += chunk;
        },
      });
      const tEnd = performance.now();
      const tokens = sequence.tokenMeter.usedOutputTokens - before;
      return {
        ttftMs: (tFirst ?? Number.NaN) - start,
        decodeTps: decodeRate(tokens, tFirst, tEnd),
        completionTokens: tokens,
        finish: FINISH[result.metadata.stopReason] ?? result.metadata.stopReason,
        text,
      };
    } finally {
      completion.dispose({ disposeSequence: false });
    }
  };
  return {
    run,
    describe: `node-llama-cpp ${llama.llamaCppRelease.release}, cpu, ${threads} threads, ${PARALLEL} sequences, ctx ${context.contextSize}, wrapper ${wrapper.wrapperName}`,
    async close() {
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}

/** Path 2: our llama.cpp engine in this process (prompt rendering, sequence pool, event queue). */
export async function startEngineDirect(modelPath: string, maxTokens: number, threads: number): Promise<PathHandle> {
  const logger = createLogger('bench-llama', 'warn', process.stderr);
  const engine = createLlamaCppEngine({ modelPath, gpu: 'cpu', threads, parallel: PARALLEL }, { logger });
  await engine.start();
  const run: Runner = async (index) => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error('request timed out')), REQUEST_TIMEOUT_MS);
    let tFirst: number | undefined;
    let tEnd = Number.NaN;
    let text = '';
    let tokens = 0;
    let finish = 'none';
    const start = performance.now();
    try {
      const events = engine.generate(
        { requestId: `bench-${index}`, messages: messagesFor(index), maxTokens, temperature: 0, topP: 1, stop: [] },
        controller.signal,
      );
      for await (const e of events) {
        if (e.type === 'delta') {
          if (e.text !== '' && tFirst === undefined) tFirst = performance.now();
          text += e.text;
        } else {
          tEnd = performance.now();
          tokens = e.usage.completionTokens;
          finish = e.finishReason;
        }
      }
    } finally {
      clearTimeout(timer);
    }
    if (finish === 'cancelled') throw new Error('generation cancelled (timeout)');
    return { ttftMs: (tFirst ?? Number.NaN) - start, decodeTps: decodeRate(tokens, tFirst, tEnd), completionTokens: tokens, finish, text };
  };
  return { run, describe: engine.info().backend, close: () => engine.close() };
}
