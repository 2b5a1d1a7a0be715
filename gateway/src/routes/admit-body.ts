/**
 * The first step of the HTTP generation routes (chat completions, legacy completions): parse the
 * body, drop it from the request, admit the request through quota, and keep its rate-limit
 * headers in the request's locals. An error response (sendError) and a stream's 200 (openSse)
 * write those headers from there, a JSON response sets them when it is rendered (each header
 * once). Throws the parse error, or the quota's refusal after the headers are known.
 *
 * The route handler stays suspended for as long as a stream is open; the parsed body (the prompt)
 * lives only in this function's frame, which has returned by then.
 */
import type { Request } from 'express';
import { admit, type Admission, type Authorized, type ChatCall, type ChatDeps, type ChatInput } from '../chat/core.js';
import { rateLimitHeaders } from '../openai/rate-limit-headers.js';
import type { RequestLocals } from '../request-context.js';

/** What a route's parse keeps of the body: the generation, how to answer, and its own extra. */
export interface ParsedGeneration<E> {
  input: ChatInput;
  stream: boolean;
  includeUsage: boolean;
  extra: E;
}

export interface AdmittedGeneration<E> {
  admission: Admission;
  headers: Record<string, string>;
  stream: boolean;
  includeUsage: boolean;
  extra: E;
}

export async function admitBody<E>(
  deps: ChatDeps,
  call: ChatCall,
  who: Authorized,
  req: Request,
  locals: RequestLocals,
  parse: (body: unknown) => ParsedGeneration<E>,
): Promise<AdmittedGeneration<E>> {
  const parsed = parse(req.body);
  // The raw body is not read again: the request object (which the response keeps for as long
  // as a stream is open) no longer holds the prompt.
  req.body = undefined;
  const admission = await admit(deps, call, who, parsed.input);
  const headers = rateLimitHeaders(admission.limits.requests, admission.limits.tokens);
  locals.headers = headers;
  if (admission.denied) throw admission.denied;
  return { admission, headers, stream: parsed.stream, includeUsage: parsed.includeUsage, extra: parsed.extra };
}
