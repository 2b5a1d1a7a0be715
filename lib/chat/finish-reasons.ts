/**
 * Why a generation ended, in the three spellings it travels in:
 * - the engines' own value ({@link FinishReason}): `stop`, `length` or `cancelled`;
 * - the proto enum on the gRPC hop (worker → gateway);
 * - OpenAI's `finish_reason` string: `stop`, `length` or `tool_calls` (a cancelled generation
 *   has no client left to read one). Upstream servers may send others (`content_filter`,
 *   `abort`); they read as `stop`.
 */
import { FinishReason as ProtoFinishReason } from '../../gen/xerotier/inference/v1/inference_service.js';

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'cancelled';
/** The values OpenAI clients see in `finish_reason`. */
export type OpenAIFinishReason = 'stop' | 'length' | 'tool_calls';

export const finishReasonToProto: Readonly<Record<FinishReason, ProtoFinishReason>> = {
  stop: ProtoFinishReason.FINISH_REASON_STOP,
  length: ProtoFinishReason.FINISH_REASON_LENGTH,
  tool_calls: ProtoFinishReason.FINISH_REASON_TOOL_CALLS,
  cancelled: ProtoFinishReason.FINISH_REASON_CANCELLED,
};

/** The `finish_reason` a client sees for a proto value; unspecified and unknown read as `stop`. */
export function openAIFinishReason(reason: ProtoFinishReason): OpenAIFinishReason {
  if (reason === ProtoFinishReason.FINISH_REASON_LENGTH) return 'length';
  if (reason === ProtoFinishReason.FINISH_REASON_TOOL_CALLS) return 'tool_calls';
  return 'stop';
}

/** An upstream OpenAI-compatible server's `finish_reason` (any JSON value) as ours. */
export function finishReasonFromOpenAI(reason: unknown): OpenAIFinishReason {
  return reason === 'length' || reason === 'tool_calls' ? reason : 'stop';
}
