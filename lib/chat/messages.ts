/**
 * Chat messages as every layer sees them once the wire format is read: a role, plain text and
 * an optional participant name. The gateway flattens OpenAI content parts with
 * {@link contentText}; the inference service and its engines work on {@link ChatMessage}.
 */
import type { ChatRole } from './roles.js';
import type { ToolCall } from './tools.js';

export interface ChatMessage {
  role: ChatRole;
  content: string;
  name?: string | undefined;
  /** An assistant turn's tool calls. */
  toolCalls?: ToolCall[] | undefined;
  /** A tool turn: the id of the call it answers. */
  toolCallId?: string | undefined;
}

/** OpenAI message content: a string, text parts, or null (an assistant turn with tool calls). */
export type OpenAIContent = string | ReadonlyArray<{ text: string }> | null | undefined;

/** Flattens OpenAI content (string or text parts) to plain text; null and absent are ''. */
export function contentText(content: OpenAIContent): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  return content.map((part) => part.text).join('');
}
