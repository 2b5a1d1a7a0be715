/**
 * Embeddings with llama.cpp: node-llama-cpp's embedding context (`model.createEmbeddingContext`),
 * a second context beside the generation one, created on the first embeddings request so a
 * worker that never embeds never pays for it. One embedding context evaluates one input at a
 * time (node-llama-cpp serializes them); the inference service's admission bounds how many
 * requests wait for it.
 *
 * Vectors: llama.cpp's pooled embedding (the model's pooling type; the last token for causal
 * models without one), L2-normalized as OpenAI's and llama-server's are, so a dot product is the
 * cosine similarity. Their length is the model's embedding size; `dimensions` is honoured only
 * when it equals that size (truncating a vector is only meaningful for models trained for it).
 * Usage: the tokens evaluated per input, BOS/EOS the model adds included.
 */
import type { LlamaEmbeddingContext, LlamaModel } from 'node-llama-cpp';
import { AppError, invalidRequest } from '../../../../../lib/errors/app-error.js';
import type { EmbedParams, EmbedResult } from '../engine.js';
import { normalize } from '../vector.js';

export interface Embedder {
  embed(params: EmbedParams, signal: AbortSignal): Promise<EmbedResult>;
  /** Disposes the embedding context, if one was created. */
  close(): Promise<void>;
}

export interface EmbedderOptions {
  /** Tokens one input may use (at most the generation context's size). */
  contextSize: number;
  threads: number;
}

export function createEmbedder(model: LlamaModel, options: EmbedderOptions): Embedder {
  let context: Promise<LlamaEmbeddingContext> | undefined;
  let closed = false;

  const open = (): Promise<LlamaEmbeddingContext> => {
    context ??= model
      .createEmbeddingContext({
        contextSize: options.contextSize,
        // A pooled embedding needs the whole input in one batch.
        batchSize: options.contextSize,
        threads: options.threads,
      })
      .catch((err: unknown) => {
        context = undefined; // let a later request try again
        throw new AppError('unavailable', 'The embedding context could not be created.', { code: 'embeddings_unavailable', retryAfterSeconds: 5, cause: err });
      });
    return context;
  };

  return {
    async embed(params, signal) {
      if (closed) throw new AppError('unavailable', 'llama-cpp engine is closed');
      const embeddingContext = await open();
      const lengths = params.inputs.map((input) => embeddingContext.calculateInputLength(input));
      // Check every input before evaluating any, so an over-long one costs nothing.
      lengths.forEach((length, i) => {
        if (length >= options.contextSize) {
          throw invalidRequest(
            `This model's maximum input length is ${options.contextSize - 1} tokens; input[${i}] has ${length} tokens.`,
            { code: 'context_length_exceeded', param: 'input' },
          );
        }
      });
      const embeddings: number[][] = [];
      for (const input of params.inputs) {
        signal.throwIfAborted();
        const { vector } = await embeddingContext.getEmbeddingFor(input);
        if (params.dimensions !== undefined && params.dimensions !== vector.length) {
          throw invalidRequest(
            `This model's embeddings have ${vector.length} dimensions; 'dimensions' must be ${vector.length} or omitted.`,
            { code: 'invalid_request', param: 'dimensions' },
          );
        }
        embeddings.push(normalize(vector));
      }
      return { embeddings, promptTokens: lengths.reduce((a, b) => a + b, 0) };
    },
    async close() {
      closed = true;
      const pending = context;
      context = undefined;
      const created = await pending?.catch(() => undefined);
      await created?.dispose();
    },
  };
}
