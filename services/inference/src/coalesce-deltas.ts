/**
 * Deltas that are ready together travel as one message.
 *
 * An engine often has several tokens at once: an upstream OpenAI server's network read carries a
 * burst of SSE chunks, a simulator at full speed has them all. Sent one gRPC message each, every
 * token costs the worker a socket write (grpc-js writes a stream's messages one at a time, each
 * after the previous one left), and the gateway a read and an SSE write. Here a text delta is held
 * while the next message is already there: consecutive text deltas (or consecutive reasoning
 * deltas) are joined, their token counts added. A held delta goes out as soon as the next message
 * is not ready within the current event-loop turn, so a model that produces tokens one by one
 * (llama.cpp, a paced upstream) streams exactly as before, and nothing waits for more tokens.
 *
 * Order and content are kept: tool-call deltas, the start and the final message pass through
 * unchanged and are never joined; a held delta is sent before whatever follows it, including the
 * error of a stream that fails (the tokens before a failure are delivered, then the error). A
 * joined delta holds at most MAX_JOINED_TOKENS tokens.
 */
import type { Delta, GenerateResponse } from '../../../gen/xerotier/inference/v1/inference_service.js';

const LATER = Symbol('later');

/**
 * A joined delta goes out once it holds this many tokens, ready or not: an engine that has a long
 * answer all at once still streams in pieces, so flow control (a client that stops reading stops
 * the engine) keeps working and no answer is held whole in memory.
 */
export const MAX_JOINED_TOKENS = 64;

/** Text-only or reasoning-only deltas; others (tool calls, mixed) are never joined. */
function kind(d: Delta): 'text' | 'reasoning' | undefined {
  if (d.toolCalls.length > 0) return undefined;
  if (d.reasoning === '') return 'text';
  if (d.text === '') return 'reasoning';
  return undefined;
}

function join(a: Delta, b: Delta): Delta {
  return { text: a.text + b.text, reasoning: a.reasoning + b.reasoning, tokenCount: a.tokenCount + b.tokenCount, toolCalls: [] };
}

export async function* coalesceDeltas(source: AsyncIterable<GenerateResponse>): AsyncGenerator<GenerateResponse> {
  const it = source[Symbol.asyncIterator]();
  // One timer per event-loop turn, shared by every check made in that turn.
  let turn: Promise<typeof LATER> | undefined;
  const endOfTurn = (): Promise<typeof LATER> =>
    (turn ??= new Promise((resolve) =>
      setImmediate(() => {
        turn = undefined;
        resolve(LATER);
      }),
    ));
  let held: Delta | undefined;
  let pending: Promise<IteratorResult<GenerateResponse>> | undefined;
  let finished = false;
  try {
    for (;;) {
      const next = pending ?? it.next();
      pending = undefined;
      let result: IteratorResult<GenerateResponse> | typeof LATER;
      try {
        result = held === undefined ? await next : await Promise.race([next, endOfTurn()]);
      } catch (err) {
        finished = true;
        if (held !== undefined) yield { delta: held };
        throw err;
      }
      if (result === LATER) {
        // Not ready in this turn: send what is held, keep waiting for the same message.
        pending = next;
        const out = held;
        held = undefined;
        if (out !== undefined) yield { delta: out };
        continue;
      }
      if (result.done) {
        finished = true;
        if (held !== undefined) yield { delta: held };
        return;
      }
      const message = result.value;
      const k = message.delta === undefined ? undefined : kind(message.delta);
      if (message.delta !== undefined && k !== undefined) {
        if (held !== undefined && kind(held) === k) {
          held = join(held, message.delta);
          if (held.tokenCount >= MAX_JOINED_TOKENS) {
            const out = held;
            held = undefined;
            yield { delta: out };
          }
          continue;
        }
        if (held !== undefined) yield { delta: held };
        held = message.delta;
        continue;
      }
      if (held !== undefined) {
        const out = held;
        held = undefined;
        yield { delta: out };
      }
      yield message;
    }
  } finally {
    // The consumer stopped early (a cancelled call): end the source too, so its cleanup runs
    // (admission, the engine's request). A call still in flight finishes first.
    if (!finished) {
      if (pending !== undefined) await pending.catch(() => undefined);
      await it.return?.(undefined);
    }
  }
}
