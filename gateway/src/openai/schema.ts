/**
 * Validation of OpenAI chat completion requests. Bad input becomes one 400 with the offending
 * `param`, never a 500. Unknown fields are ignored (SDKs add new ones over time); fields we
 * cannot honour (n > 1, tools) are refused rather than silently dropped.
 */
import { CHAT_ROLES } from '../../../lib/chat/roles.js';
import { z } from 'zod';
import { invalidRequest } from '../../../lib/errors/app-error.js';

const textPart = z.object({ type: z.literal('text'), text: z.string() });
const content = z.union([z.string(), z.array(textPart).max(256), z.null()]);

const message = z.object({
  role: z.enum(CHAT_ROLES),
  content: content.optional(),
  name: z.string().max(256).optional(),
  tool_call_id: z.string().optional(),
});

const nullable = <T extends z.ZodType>(t: T) => t.nullable().optional();

export const chatCompletionRequest = z.object({
  model: z.string({ error: "Missing required field 'model'." }).min(1, "'model' must not be empty."),
  messages: z.array(message).min(1, "'messages' must contain at least one message.").max(2048),
  stream: nullable(z.boolean()),
  stream_options: nullable(z.object({ include_usage: z.boolean().optional() })),
  temperature: nullable(z.number().min(0).max(2)),
  top_p: nullable(z.number().min(0).max(1)),
  n: nullable(z.literal(1, "only n=1 is supported")),
  max_tokens: nullable(z.number().int().min(1)),
  max_completion_tokens: nullable(z.number().int().min(1)),
  seed: nullable(z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER)),
  stop: nullable(z.union([z.string().min(1), z.array(z.string().min(1)).max(4, 'at most 4 stop sequences')])),
  tools: nullable(z.array(z.unknown()).max(0, 'tools are not supported by this endpoint')),
  user: nullable(z.string().max(256)),
  service_tier: nullable(z.string()),
});

export type ChatCompletionRequest = z.infer<typeof chatCompletionRequest>;

export function parseChatCompletionRequest(body: unknown): ChatCompletionRequest {
  return parseRequestBody(chatCompletionRequest, body);
}

/** Validates a JSON request body against `schema`: one 400 naming the first offending `param`. */
export function parseRequestBody<T>(schema: z.ZodType<T>, body: unknown): T {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalidRequest('The request body must be a JSON object.', { code: 'invalid_request' });
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue?.path ?? [];
  const param = path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
  const value = valueAt(body, path);
  const message = value === undefined
    ? `Missing required parameter: '${param}'.`
    : typeof value === 'number' && !Number.isFinite(value)
      ? `Invalid '${param}': the number is out of range.`
      : issue?.code === 'invalid_type'
      ? `Invalid type for '${param}': expected ${issue.expected}, got ${describeValue(value)}.`
      : `Invalid '${param}': ${issue?.message ?? 'invalid value'}.`;
  throw invalidRequest(message, { code: 'invalid_request', param: param || undefined });
}

/** The value at a validation issue's path in the raw body (undefined when absent). */
function valueAt(body: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = body;
  for (const key of path) {
    if (typeof v !== 'object' || v === null || !Object.hasOwn(v, key)) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a decimal number';
  return `a ${typeof v}`;
}


