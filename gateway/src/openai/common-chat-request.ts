/**
 * The common shape of a chat completion request, recognised without zod: a model, plain text
 * messages and a few sampling scalars, the shape of nearly every request on the hot path. When
 * the body is in this shape and every value is one the schema accepts, the body is already what
 * the schema would return (no field to strip, no default to fill in), so it is returned as it
 * is. Anything else, including anything invalid, returns undefined and goes through the schema,
 * which owns every error text. This is only ever stricter than the schema, never more lenient.
 */
import type { ChatCompletionRequest } from './schema.js';

type Check = (value: unknown) => boolean;

const nullOr = (check: Check): Check => (v) => v === null || check(v);
const boolean: Check = (v) => typeof v === 'boolean';
const inRange = (min: number, max: number): Check => (v) => typeof v === 'number' && v >= min && v <= max;
const safeIntFrom = (min: number): Check => (v) => Number.isSafeInteger(v) && (v as number) >= min;
const nonEmptyString: Check = (v) => typeof v === 'string' && v.length > 0;
const shortString: Check = (v) => typeof v === 'string' && v.length <= 256;
/** Every element passes (a sparse array's holes do not; JSON never makes them, but the check stays exact). */
const each = (items: unknown[], check: Check): boolean => {
  for (let i = 0; i < items.length; i++) if (!check(items[i])) return false;
  return true;
};
const stop: Check = (v) => nonEmptyString(v) || (Array.isArray(v) && v.length <= 4 && each(v, nonEmptyString));
/** An object as JSON.parse makes it: the schema's output is a plain object too. */
const plainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
const streamOptions: Check = (v) => {
  if (!plainObject(v)) return false;
  for (const key in v) {
    if (key !== 'include_usage' || !boolean(v[key])) return false;
  }
  return true;
};

/** The top-level fields of the common shape (besides model and messages) and what each may hold. */
const SCALARS: Readonly<Record<string, Check>> = {
  stream: nullOr(boolean),
  stream_options: nullOr(streamOptions),
  temperature: nullOr(inRange(0, 2)),
  top_p: nullOr(inRange(0, 1)),
  n: nullOr((v) => v === 1),
  max_tokens: nullOr(safeIntFrom(1)),
  max_completion_tokens: nullOr(safeIntFrom(1)),
  seed: nullOr(safeIntFrom(Number.MIN_SAFE_INTEGER)),
  stop: nullOr(stop),
  presence_penalty: nullOr(inRange(-2, 2)),
  frequency_penalty: nullOr(inRange(-2, 2)),
  parallel_tool_calls: nullOr(boolean),
  logprobs: nullOr(boolean),
  user: nullOr(shortString),
  safety_identifier: nullOr(shortString),
};

/**
 * Roles of the common shape. A `tool` message needs `tool_call_id`, which the common shape does
 * not carry: it goes through the schema.
 */
const ROLES: ReadonlySet<unknown> = new Set(['system', 'developer', 'user', 'assistant']);

/** A message of the common shape: a role, text content (or null, or none) and an optional name. */
function isCommonMessage(m: unknown): boolean {
  if (!plainObject(m)) return false;
  const fields = m;
  let role = false;
  for (const key in fields) {
    const v = fields[key];
    if (key === 'role') role = ROLES.has(v);
    else if (key === 'content') { if (v !== null && typeof v !== 'string') return false; }
    else if (key === 'name') { if (!shortString(v)) return false; }
    else return false;
  }
  return role;
}

/** The body as the schema would return it when it is in the common shape, else undefined. */
export function commonChatRequest(body: unknown): ChatCompletionRequest | undefined {
  if (!plainObject(body)) return undefined;
  const fields = body;
  let model = false;
  let messages = false;
  for (const key in fields) {
    const v = fields[key];
    if (key === 'model') model = nonEmptyString(v);
    else if (key === 'messages') messages = Array.isArray(v) && v.length >= 1 && v.length <= 2048 && each(v, isCommonMessage);
    else {
      const check = Object.hasOwn(SCALARS, key) ? SCALARS[key] : undefined;
      if (check === undefined || !check(v)) return undefined;
    }
  }
  return model && messages ? (body as unknown as ChatCompletionRequest) : undefined;
}
