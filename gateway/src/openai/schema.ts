/**
 * Validation of OpenAI chat completion requests. Bad input becomes one 400 with the offending
 * `param`, never a 500. Every documented parameter is read: the ones no engine here can honour
 * (n > 1, audio, prediction, web search, stored completions, …) are refused by name
 * ({@link REFUSED}); the ones only some engines honour (penalties, logit_bias, logprobs,
 * response_format, tools, reasoning_effort) travel to the worker, which refuses them by name
 * when its engine cannot. Undocumented fields are ignored (SDKs add new ones over time).
 */
import { CHAT_ROLES } from '../../../lib/chat/roles.js';
import { z } from 'zod';
import { invalidRequest } from '../../../lib/errors/app-error.js';
import { commonChatRequest } from './common-chat-request.js';

const textPart = z.object({ type: z.literal('text'), text: z.string() });
const content = z.union([z.string(), z.array(textPart).max(256), z.null()]);

const nullable = <T extends z.ZodType>(t: T) => t.nullable().optional();

const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const functionName = z.string().regex(FUNCTION_NAME, 'must be 1 to 64 letters, digits, underscores or dashes');
const jsonObject = z.record(z.string(), z.unknown());

const toolCall = z.object({
  id: z.string().min(1).max(256),
  type: z.literal('function'),
  function: z.object({ name: functionName, arguments: z.string() }),
});

const message = z.object({
  role: z.enum(CHAT_ROLES),
  content: content.optional(),
  name: z.string().max(256).optional(),
  tool_call_id: z.string().max(256).optional(),
  tool_calls: nullable(z.array(toolCall).max(128)),
  /** Earlier assistant turns of reasoning models may carry it; it is not sent to the model. */
  reasoning_content: nullable(z.string()),
});

const tool = z.object({
  type: z.literal('function', "only 'function' tools are supported"),
  function: z.object({
    name: functionName,
    description: z.string().optional(),
    parameters: jsonObject.optional(),
    strict: nullable(z.boolean()),
  }),
});

const toolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  z.object({ type: z.literal('function'), function: z.object({ name: functionName }) }),
], "must be 'none', 'auto', 'required' or {type: 'function', function: {name}}");

const responseFormat = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }),
  z.object({ type: z.literal('json_object') }),
  z.object({
    type: z.literal('json_schema'),
    json_schema: z.object({
      name: functionName,
      description: z.string().optional(),
      schema: jsonObject.optional(),
      strict: nullable(z.boolean()),
    }),
  }),
], "type must be 'text', 'json_object' or 'json_schema'");

const penalty = z.number().min(-2).max(2);

/**
 * Documented parameters that no engine here honours: refused when set to anything but their
 * neutral value (null, false, or the value that means "as usual").
 */
export const REFUSED: Readonly<Record<string, (value: unknown) => boolean>> = {
  audio: (v) => v !== null,
  modalities: (v) => v !== null && !(Array.isArray(v) && v.every((m) => m === 'text')),
  prediction: (v) => v !== null,
  web_search_options: (v) => v !== null,
  functions: (v) => v !== null,
  function_call: (v) => v !== null,
  store: (v) => v !== null && v !== false,
  verbosity: (v) => v !== null,
  moderation: (v) => v !== null,
  prompt_cache_key: (v) => v !== null,
  prompt_cache_options: (v) => v !== null,
  prompt_cache_retention: (v) => v !== null,
  service_tier: (v) => v !== null && v !== 'auto' && v !== 'default',
};

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
  tools: nullable(z.array(tool).max(128, 'at most 128 tools')),
  tool_choice: nullable(toolChoice),
  parallel_tool_calls: nullable(z.boolean()),
  response_format: nullable(responseFormat),
  presence_penalty: nullable(penalty),
  frequency_penalty: nullable(penalty),
  logit_bias: nullable(z.record(z.string().regex(/^\d{1,9}$/, 'keys must be token ids'), z.number().min(-100).max(100))),
  logprobs: nullable(z.boolean()),
  top_logprobs: nullable(z.number().int().min(0).max(20)),
  reasoning_effort: nullable(z.enum(['none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max'])),
  user: nullable(z.string().max(256)),
  safety_identifier: nullable(z.string().max(256)),
  metadata: nullable(z.record(z.string().max(64), z.string().max(512)).refine((m) => Object.keys(m).length <= 16, 'at most 16 keys')),
  service_tier: nullable(z.string()),
});

export type ChatCompletionRequest = z.infer<typeof chatCompletionRequest>;

export function parseChatCompletionRequest(body: unknown): ChatCompletionRequest {
  // Most requests are plain text chats: checked by hand, with the same result the schema gives.
  const common = commonChatRequest(body);
  if (common !== undefined) return checkCombinations(common);
  return parseChatCompletionRequestBySchema(body);
}

/** Every body through the schema: the refused parameters, the fields, the rules across fields. */
export function parseChatCompletionRequestBySchema(body: unknown): ChatCompletionRequest {
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    for (const [param, refused] of Object.entries(REFUSED)) {
      if (Object.hasOwn(body, param) && refused((body as Record<string, unknown>)[param])) {
        throw invalidRequest(`'${param}' is not supported by this platform.`, { code: 'unsupported_parameter', param });
      }
    }
  }
  return checkCombinations(parseRequestBody(chatCompletionRequest, body));
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

/** Rules across fields that the per-field schema cannot say. */
function checkCombinations(body: ChatCompletionRequest): ChatCompletionRequest {
  const refuse = (param: string, message: string): never => {
    throw invalidRequest(message, { code: 'invalid_request', param });
  };
  if (body.top_logprobs !== undefined && body.top_logprobs !== null && body.logprobs !== true) {
    refuse('top_logprobs', "'top_logprobs' requires 'logprobs': true.");
  }
  const names = body.tools ? body.tools.map((t) => t.function.name) : [];
  if (names.length > 1 && new Set(names).size !== names.length) refuse('tools', 'Tool names must be unique.');
  const choice = body.tool_choice;
  if (typeof choice === 'object' && choice !== null && !names.includes(choice.function.name)) {
    refuse('tool_choice', `tool_choice names '${choice.function.name}', which is not in 'tools'.`);
  }
  if ((choice === 'required' || typeof choice === 'object') && choice !== null && names.length === 0) {
    refuse('tool_choice', "tool_choice requires 'tools'.");
  }
  for (let i = 0; i < body.messages.length; i++) {
    const m = body.messages[i]!;
    if (m.role === 'tool' && !m.tool_call_id) refuse(`messages[${i}].tool_call_id`, "A 'tool' message needs 'tool_call_id'.");
    if (m.tool_calls && m.tool_calls.length > 0 && m.role !== 'assistant') {
      refuse(`messages[${i}].tool_calls`, "Only 'assistant' messages carry 'tool_calls'.");
    }
  }
  return body;
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


