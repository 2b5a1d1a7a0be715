/**
 * Prompt rendering: API messages through the model's own chat template (the chat wrapper
 * node-llama-cpp resolves from the GGUF, e.g. ChatML), tokenized exactly as they will be
 * evaluated, so the prompt we count is the prompt we run.
 *
 * Roles: `system` and `developer` are system messages (consecutive ones are merged by the
 * template); `assistant` is a model turn, its `tool_calls` written as the JSON objects the tool
 * grammar makes the model produce (output-plan.ts); `tool` is a user turn prefixed with
 * "Tool result (name):", the name found through `tool_call_id`. Tools the model may call are
 * documented in a leading system message, with that same call form (the templates' own
 * function syntaxes differ per model and would contradict the grammar). Message text is inserted as plain text, so "<|im_start|>" typed by a
 * user is not a control token.
 */
import type { ChatHistoryItem, ChatWrapper, LlamaModel, LlamaText, Token } from 'node-llama-cpp';
import type { ChatMessage, ToolSpec } from '../engine.js';

export interface RenderedPrompt {
  /** Tokens handed to LlamaCompletion, without the BOS token it prepends itself. */
  inputTokens: Token[];
  /** Tokens the model evaluates for the prompt, BOS included. */
  promptTokens: number;
  /** The template's end-of-turn markers (e.g. "<|im_end|>"), so a turn never runs on. */
  templateStops: LlamaText[];
}

/** @internal Maps API messages onto node-llama-cpp chat history (see the file comment). */
export function toChatHistory(messages: readonly ChatMessage[], tools: readonly ToolSpec[] = []): ChatHistoryItem[] {
  const callNames = new Map(messages.flatMap((m) => (m.toolCalls ?? []).map((c) => [c.id, c.name] as const)));
  const history: ChatHistoryItem[] = tools.length > 0 ? [{ type: 'system', text: toolInstructions(tools) }] : [];
  for (const message of messages) {
    switch (message.role) {
      case 'system':
      case 'developer':
        history.push({ type: 'system', text: message.content });
        break;
      case 'user':
        history.push({ type: 'user', text: message.content });
        break;
      case 'assistant': {
        // Earlier calls in the very form the grammar makes the model write them.
        const calls = (message.toolCalls ?? []).map((c) => `{"name": ${JSON.stringify(c.name)}, "arguments": ${c.arguments}}`);
        const text = [message.content, ...calls].filter((t) => t !== '').join('\n');
        history.push({ type: 'model', response: text === '' ? [] : [text] });
        break;
      }
      case 'tool': {
        const name = message.name ?? (message.toolCallId !== undefined ? callNames.get(message.toolCallId) : undefined);
        history.push({ type: 'user', text: `${toolPrefix(name)}\n${message.content}` });
        break;
      }
    }
  }
  // An empty model turn at the end renders the "assistant is speaking now" header.
  history.push({ type: 'model', response: [] });
  return history;
}

/** The tools, documented in a system message, with the one form a call takes (output-plan.ts). */
function toolInstructions(tools: readonly ToolSpec[]): string {
  const list = tools.map((t) => `- ${t.name}${t.description ? `: ${t.description}` : ''}\n  arguments: ${JSON.stringify(t.parameters)}`);
  return [
    'You can call these tools:',
    ...list,
    'To call a tool, reply with only a JSON object {"name": <tool name>, "arguments": <arguments object>}.',
  ].join('\n');
}

function toolPrefix(name: string | undefined): string {
  return name === undefined || name === '' ? 'Tool result:' : `Tool result (${name}):`;
}

/**
 * A legacy completion's raw prompt: the text tokenized as is (special-token text such as
 * "<|im_end|>" stays plain text), no chat template and so no template stops; the model stops at
 * its end-of-generation token, a stop sequence or max_tokens.
 */
export function renderRawPrompt(model: LlamaModel, text: string): RenderedPrompt {
  const tokens = model.tokenize(text, false);
  const bos = model.tokens.bos;
  const prependsBos = model.tokens.shouldPrependBosToken && bos !== null;
  return { inputTokens: tokens, promptTokens: tokens.length + (prependsBos ? 1 : 0), templateStops: [] };
}

export function renderPrompt(chatWrapper: ChatWrapper, model: LlamaModel, messages: readonly ChatMessage[], tools: readonly ToolSpec[] = []): RenderedPrompt {
  const { contextText, stopGenerationTriggers } = chatWrapper.generateContextState({ chatHistory: toChatHistory(messages, tools) });
  const tokens = contextText.tokenize(model.tokenizer);
  // Templates render BOS themselves; LlamaCompletion prepends one too when the model wants it.
  const bos = model.tokens.bos;
  const prependsBos = model.tokens.shouldPrependBosToken && bos !== null;
  const inputTokens = prependsBos && tokens[0] === bos ? tokens.slice(1) : tokens;
  return {
    inputTokens,
    promptTokens: inputTokens.length + (prependsBos ? 1 : 0),
    templateStops: stopGenerationTriggers,
  };
}
