/**
 * Validation of OpenAI embeddings requests (`POST …/v1/embeddings`): text input only (a string or
 * up to 2048 non-empty strings; token arrays are refused by name), `encoding_format` float or
 * base64, `dimensions`, `user`. Bad input is one 400 naming the `param`; unknown fields are
 * ignored, as for chat.
 */
import { z } from 'zod';
import { invalidRequest } from '../../../lib/errors/app-error.js';
import { parseRequestBody } from './schema.js';

export const MAX_EMBEDDING_INPUTS = 2048;
/** Far above any model's vector length; bounds what the simulator would allocate. */
export const MAX_EMBEDDING_DIMENSIONS = 16_384;

const text = z.string().min(1, 'input must not contain empty strings');

export const embeddingsRequest = z.object({
  model: z.string({ error: "Missing required field 'model'." }).min(1, "'model' must not be empty."),
  input: z.union([text, z.array(text).min(1, 'input must not be an empty list').max(MAX_EMBEDDING_INPUTS, `at most ${MAX_EMBEDDING_INPUTS} inputs`)]),
  encoding_format: z.enum(['float', 'base64']).nullable().optional(),
  dimensions: z.number().int().min(1).max(MAX_EMBEDDING_DIMENSIONS).nullable().optional(),
  user: z.string().max(256).nullable().optional(),
});

export type EmbeddingsRequest = z.infer<typeof embeddingsRequest>;

export function parseEmbeddingsRequest(body: unknown): EmbeddingsRequest {
  const input = (body as { input?: unknown } | null)?.input;
  if (Array.isArray(input) && input.some((item) => typeof item === 'number' || Array.isArray(item))) {
    throw invalidRequest("Token arrays are not supported as 'input'; send the text (a string or an array of strings).", {
      code: 'invalid_request',
      param: 'input',
    });
  }
  return parseRequestBody(embeddingsRequest, body);
}
