/**
 * Reads an upstream chat-completions answer into engine events (or a legacy completions answer,
 * for a raw prompt: its text is in `choices[].text` instead of the delta's or message's content).
 *
 * - Streaming (SSE): each content chunk is one `delta` with tokenCount 1, unless the chunk carries
 *   a running `usage.completion_tokens` (vLLM continuous usage stats), in which case the
 *   difference is used. `[DONE]` ends the answer; a body that ends without `[DONE]` or a
 *   finish_reason means the engine server died mid-answer.
 * - Usage: the upstream's own usage chunk (`stream_options.include_usage`) is authoritative.
 *   Upstreams that send no usage fall back to: completion = the sum of delta tokenCounts,
 *   prompt = the shared estimate (lib/chat/prompt-tokens.ts). Billing is only exact when the
 *   upstream reports usage.
 * - An upstream that ignores `stream: true` and answers one JSON body is served as one delta.
 * - Tool calls (`delta.tool_calls` pieces, or a message's whole `tool_calls`) and reasoning text
 *   (`reasoning_content`, or `reasoning`) are relayed as they come; finish_reason `tool_calls`
 *   is kept.
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { finishReasonFromOpenAI } from '../../../../../lib/chat/finish-reasons.js';
import { estimatePromptTokens, estimateTextTokens } from '../../../../../lib/chat/prompt-tokens.js';
import { AppError } from '../../../../../lib/errors/app-error.js';
import type { EngineEvent, FinishReason, GenerateParams, Usage } from '../engine.js';
import type { ToolCallDelta } from '../../../../../lib/chat/tools.js';
import { isRecord } from './json.js';
import { SseParser } from './sse.js';
import type { UpstreamCall } from './upstream-call.js';
import { GENERIC_INTERNAL, streamError, upstreamErrorInfo } from './upstream-errors.js';

/** Token counts of one answer: the upstream's where it reported them, ours otherwise. */
export class UsageTally {
  private prompt: number | undefined;
  private completion: number | undefined;
  private counted = 0;

  constructor(private readonly params: Pick<GenerateParams, 'messages' | 'prompt'>) {}

  get reportedByUpstream(): boolean {
    return this.prompt !== undefined;
  }

  /** Reads a chunk's `usage`; returns the tokens a content delta in the same chunk stands for. */
  read(usage: unknown): number | undefined {
    if (!isRecord(usage)) return undefined;
    if (typeof usage['prompt_tokens'] === 'number') this.prompt = usage['prompt_tokens'];
    return typeof usage['completion_tokens'] === 'number' ? usage['completion_tokens'] : undefined;
  }

  /** Counts one content delta; `reported` is the chunk's running completion count, if any. */
  delta(reported: number | undefined): number {
    const tokenCount = reported === undefined ? 1 : Math.max(0, reported - (this.completion ?? 0));
    this.counted += tokenCount;
    return tokenCount;
  }

  /** Records the chunk's running completion count (after its delta was counted). */
  settle(reported: number | undefined): void {
    if (reported !== undefined) this.completion = reported;
  }

  usage(): Usage {
    return {
      promptTokens: this.prompt ?? estimatePrompt(this.params),
      completionTokens: this.completion ?? this.counted,
    };
  }
}

/** Yields the deltas of an SSE body; returns the finish reason. Errors throw AppErrors. */
export async function* readChatStream(
  body: Readable,
  call: UpstreamCall,
  tally: UsageTally,
  logger: Logger,
  requestId: string,
): AsyncGenerator<EngineEvent, FinishReason, undefined> {
  call.track(body);
  body.setEncoding('utf8'); // split UTF-8 sequences are joined by the stream's decoder
  const chunks = body[Symbol.asyncIterator]() as AsyncIterator<string, undefined>;
  const parser = new SseParser();
  let finishReason: FinishReason | undefined;
  let done = false;
  for (;;) {
    let chunk: IteratorResult<string, undefined>;
    try {
      chunk = await call.wait(chunks.next());
    } catch (err) {
      if (done) break; // the drain after [DONE] timed out: the answer is complete anyway
      throw err;
    }
    if (chunk.done === true) call.complete();
    if (done) {
      if (chunk.done === true) break;
      continue; // draining the body after [DONE]
    }
    const events = chunk.done === true ? parser.end() : parser.feed(chunk.value);
    for (const ev of events) {
      if (ev.data.trim() === '[DONE]') {
        done = true;
        call.finished(); // servers end the body right after [DONE]; give them a moment
        break;
      }
      if (ev.event === 'error') throw streamError(ev.data, logger, requestId);
      let obj: unknown;
      try {
        obj = JSON.parse(ev.data);
      } catch {
        logger.warn({ requestId, data: ev.data.slice(0, 200) }, 'upstream sent a malformed stream chunk');
        throw new AppError('internal', GENERIC_INTERNAL);
      }
      if (!isRecord(obj)) continue;
      if (!Array.isArray(obj['choices']) && upstreamErrorInfo(obj) !== undefined) throw streamError(obj, logger, requestId);
      const reported = tally.read(obj['usage']);
      const choice = firstChoice(obj['choices']);
      if (choice !== undefined) {
        const delta = choice['delta'];
        // A chat chunk carries `delta`; a legacy completion chunk carries `text`.
        const content = isRecord(delta) ? delta['content'] : choice['text'];
        const text = typeof content === 'string' ? content : '';
        const toolCalls = isRecord(delta) ? toolCallPieces(delta['tool_calls']) : [];
        const reasoning = isRecord(delta) ? reasoningText(delta) : '';
        if (text.length > 0 || toolCalls.length > 0 || reasoning.length > 0) {
          const tokenCount = tally.delta(reported);
          tally.settle(reported);
          yield {
            type: 'delta',
            text,
            tokenCount,
            ...(toolCalls.length > 0 ? { toolCalls } : {}),
            ...(reasoning.length > 0 ? { reasoning } : {}),
          };
        }
        const reason = choice['finish_reason'];
        if (typeof reason === 'string' && reason.length > 0) finishReason = finishReasonFromOpenAI(reason);
      }
      tally.settle(reported);
    }
    if (chunk.done === true) break;
  }
  if (!done && finishReason === undefined) {
    logger.warn({ requestId }, 'upstream stream ended early');
    throw new AppError('unavailable', 'The inference engine stopped unexpectedly; retry later.', { retryable: true });
  }
  if (!tally.reportedByUpstream) logger.debug({ requestId }, 'upstream sent no usage; reporting estimates');
  return finishReason ?? 'stop';
}

/** The `tool_calls` pieces of a streamed delta (or, whole, of a message). */
export function toolCallPieces(value: unknown): ToolCallDelta[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((c: unknown, position: number): ToolCallDelta[] => {
    if (!isRecord(c)) return [];
    const fn = isRecord(c['function']) ? c['function'] : {};
    return [{
      index: typeof c['index'] === 'number' ? c['index'] : position,
      ...(typeof c['id'] === 'string' && c['id'] !== '' ? { id: c['id'] } : {}),
      ...(typeof fn['name'] === 'string' && fn['name'] !== '' ? { name: fn['name'] } : {}),
      arguments: typeof fn['arguments'] === 'string' ? fn['arguments'] : '',
    }];
  });
}

/** Reasoning text: vLLM and SGLang say `reasoning_content`, newer servers `reasoning`. */
function reasoningText(delta: Record<string, unknown>): string {
  const value = delta['reasoning_content'] ?? delta['reasoning'];
  return typeof value === 'string' ? value : '';
}

/** Choice 0 of a chunk (servers that omit `index` send one choice). */
function firstChoice(choices: unknown): Record<string, unknown> | undefined {
  if (!Array.isArray(choices)) return undefined;
  const choice: unknown = choices.find((c: unknown) => isRecord(c) && (c['index'] === 0 || c['index'] === undefined));
  return isRecord(choice) ? choice : undefined;
}

/** The events of a whole (non-streaming) JSON answer. */
export function fromJsonAnswer(json: unknown, params: GenerateParams, logger: Logger): EngineEvent[] {
  const info = upstreamErrorInfo(json);
  if (!isRecord(json) || (info !== undefined && !Array.isArray(json['choices']))) {
    throw streamError(json, logger, params.requestId);
  }
  const choices = json['choices'];
  const choice = Array.isArray(choices) ? (choices[0] as unknown) : undefined;
  const message = isRecord(choice) ? choice['message'] : undefined;
  const content = isRecord(message) ? message['content'] : isRecord(choice) ? choice['text'] : undefined;
  const text = typeof content === 'string' ? content : '';
  const toolCalls = isRecord(message) ? toolCallPieces(message['tool_calls']) : [];
  const reasoning = isRecord(message) ? reasoningText(message) : '';
  const u = json['usage'];
  const completion = isRecord(u) && typeof u['completion_tokens'] === 'number' ? u['completion_tokens'] : text.length > 0 ? 1 : 0;
  const prompt = isRecord(u) && typeof u['prompt_tokens'] === 'number' ? u['prompt_tokens'] : estimatePrompt(params);
  const events: EngineEvent[] = [];
  if (text.length > 0 || toolCalls.length > 0 || reasoning.length > 0) {
    events.push({
      type: 'delta',
      text,
      tokenCount: completion,
      ...(toolCalls.length > 0 ? { toolCalls } : {}),
      ...(reasoning.length > 0 ? { reasoning } : {}),
    });
  }
  events.push({
    type: 'final',
    finishReason: finishReasonFromOpenAI(isRecord(choice) ? choice['finish_reason'] : undefined),
    usage: { promptTokens: prompt, completionTokens: completion },
  });
  return events;
}

function estimatePrompt(params: Pick<GenerateParams, 'messages' | 'prompt'>): number {
  return params.prompt === undefined ? estimatePromptTokens(params.messages) : estimateTextTokens(params.prompt);
}
