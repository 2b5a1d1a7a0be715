/**
 * An embeddings result as the OpenAI `list` of `embedding` objects. `encoding_format: "base64"`
 * sends each vector as the base64 of its little-endian float32 bytes (what the official SDKs
 * request by default and decode), `float` as a JSON array of numbers.
 */
import type { Embedded } from './core.js';

export type EncodingFormat = 'float' | 'base64';

export function embeddingsBody(result: Embedded, format: EncodingFormat) {
  return {
    object: 'list' as const,
    data: result.vectors.map((vector, index) => ({
      object: 'embedding' as const,
      index,
      embedding: format === 'base64' ? toBase64(vector) : vector,
    })),
    model: result.model,
    usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
  };
}

function toBase64(vector: number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((v, i) => bytes.writeFloatLE(v, i * 4));
  return bytes.toString('base64');
}
