/**
 * `n` `Generate` streams read to their end, `concurrency` at a time (each lane takes the next
 * request when its stream ends); counts the messages and the tokens their deltas carried. Shared
 * by the worker benchmarks that drive a worker over gRPC (bench/lib/inference-workers-interleaved.ts,
 * bench/worker-pipeline-cpu.ts).
 */
export interface GenerationMessage {
  delta?: { tokenCount: number } | undefined;
}

export async function runGenerationLanes(
  n: number,
  concurrency: number,
  generate: (index: number) => AsyncIterable<GenerationMessage>,
): Promise<{ messages: number; tokens: number }> {
  let next = 0;
  let messages = 0;
  let tokens = 0;
  const lane = async (): Promise<void> => {
    while (next < n) {
      next += 1;
      for await (const m of generate(next)) {
        messages += 1;
        if (m.delta) tokens += m.delta.tokenCount;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return { messages, tokens };
}
