/**
 * Validation of OpenAI legacy completions requests (`POST …/v1/completions`). One text prompt
 * (a string, or an array holding one string); what the engines cannot honour is refused by name
 * rather than ignored: several prompts or token-array prompts (`prompt`), `suffix`, `n` and
 * `best_of` above 1, `logprobs`, non-zero penalties and a non-empty `logit_bias`. `max_tokens`
 * defaults to 16, as OpenAI's does. Unknown fields are ignored, as for chat.
 */
import { z } from 'zod';
import { invalidRequest } from '../../../lib/errors/app-error.js';
import { parseRequestBody } from './schema.js';

/** OpenAI's default completion length for this legacy API. */
export const DEFAULT_COMPLETION_MAX_TOKENS = 16;

const nullable = <T extends z.ZodType>(t: T) => t.nullable().optional();
const refused = (what: string) => z.unknown().refine(() => false, what);
const zeroOrUnset = (name: string) => nullable(z.literal(0, `${name} is not supported by this endpoint; omit it or send 0`));

export const completionsRequest = z.object({
  model: z.string({ error: "Missing required field 'model'." }).min(1, "'model' must not be empty."),
  prompt: z.union([
    z.string().min(1, 'prompt must not be empty'),
    z.tuple([z.string().min(1, 'prompt must not be empty')], { error: 'one prompt per request: a string or an array of one string' }),
  ]),
  suffix: nullable(z.literal('', 'suffix (insertion) is not supported by this endpoint')),
  max_tokens: nullable(z.number().int().min(1)),
  temperature: nullable(z.number().min(0).max(2)),
  top_p: nullable(z.number().min(0).max(1)),
  n: nullable(z.literal(1, 'only n=1 is supported')),
  best_of: nullable(z.literal(1, 'only best_of=1 is supported')),
  stream: nullable(z.boolean()),
  stream_options: nullable(z.object({ include_usage: z.boolean().optional() })),
  stop: nullable(z.union([z.string().min(1), z.array(z.string().min(1)).max(4, 'at most 4 stop sequences')])),
  echo: nullable(z.boolean()),
  logprobs: nullable(refused('logprobs is not supported by this endpoint')),
  presence_penalty: zeroOrUnset('presence_penalty'),
  frequency_penalty: zeroOrUnset('frequency_penalty'),
  logit_bias: nullable(z.record(z.string(), z.number()).refine((m) => Object.keys(m).length === 0, 'logit_bias is not supported by this endpoint')),
  seed: nullable(z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER)),
  user: nullable(z.string().max(256)),
});

export type CompletionsRequest = z.infer<typeof completionsRequest>;

export function parseCompletionsRequest(body: unknown): CompletionsRequest {
  const prompt = (body as { prompt?: unknown } | null)?.prompt;
  if (Array.isArray(prompt) && prompt.some((item) => typeof item === 'number' || Array.isArray(item))) {
    throw invalidRequest("Token arrays are not supported as 'prompt'; send the text.", { code: 'invalid_request', param: 'prompt' });
  }
  return parseRequestBody(completionsRequest, body);
}
