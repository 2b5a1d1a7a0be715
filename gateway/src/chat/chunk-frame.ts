/**
 * The `chat.completion.chunk` object of a stream, and its JSON split around the delta: every
 * choice chunk of a stream is the same JSON but for its delta (and finish reason), so a stream
 * serialises the frame once and only the delta per event.
 */
export interface ChunkMeta {
  id: string;
  created: number;
  model: string;
  fingerprint: string;
}

export function chatChunk(meta: ChunkMeta, delta: object, finishReason: string | null, includeUsage: boolean): Record<string, unknown> {
  return {
    id: meta.id,
    object: 'chat.completion.chunk',
    created: meta.created,
    model: meta.model,
    service_tier: null,
    system_fingerprint: meta.fingerprint,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    ...(includeUsage ? { usage: null } : {}),
  };
}

/**
 * The JSON of `chatChunk(meta, {}, null, includeUsage)` before and after its delta:
 * `${head}${JSON.stringify(delta)}${tail}` is byte for byte `JSON.stringify(chatChunk(meta, delta,
 * null, includeUsage))` (the finish reason is in `tail`, after the delta and before any usage).
 */
export function chunkFrame(meta: ChunkMeta, includeUsage: boolean): ChunkFrame {
  const frame = JSON.stringify(chatChunk(meta, {}, null, includeUsage));
  const at = frame.indexOf('"delta":{}') + '"delta":'.length;
  return { head: frame.slice(0, at), tail: frame.slice(at + '{}'.length) };
}

export interface ChunkFrame {
  head: string;
  tail: string;
}

/** One chunk's JSON: the stream's frame around `delta` (a plain function: no closure per stream). */
export function framedDelta(frame: ChunkFrame, delta: object): string {
  return `${frame.head}${JSON.stringify(delta)}${frame.tail}`;
}
