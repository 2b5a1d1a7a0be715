/**
 * Prompt rendering: API messages through the model's own chat template (the chat wrapper
 * node-llama-cpp resolves from the GGUF, e.g. ChatML), tokenized exactly as they will be
 * evaluated, so the prompt we count is the prompt we run.
 *
 * Roles: `system` and `developer` are system messages (consecutive ones are merged by the
 * template); `assistant` is a model turn; `tool` is rendered as a user turn prefixed with
 * "Tool result (name):" because we carry no tool-call ids to pair it with a function call.
 * Message text is inserted as plain text, so "<|im_start|>" typed by a user is not a control
 * token.
 */
import type { ChatHistoryItem, ChatWrapper, LlamaModel, LlamaText, Token } from 'node-llama-cpp';
import type { ChatMessage } from '../engine.js';

export interface RenderedPrompt {
  /** Tokens handed to LlamaCompletion, without the BOS token it prepends itself. */
  inputTokens: Token[];
  /** Tokens the model evaluates for the prompt, BOS included. */
  promptTokens: number;
  /** The template's end-of-turn markers (e.g. "<|im_end|>"), so a turn never runs on. */
  templateStops: LlamaText[];
}

/** @internal Maps API messages onto node-llama-cpp chat history (see the file comment). */
export function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history = messages.map((message): ChatHistoryItem => {
    switch (message.role) {
      case 'system':
      case 'developer':
        return { type: 'system', text: message.content };
      case 'user':
        return { type: 'user', text: message.content };
      case 'assistant':
        return { type: 'model', response: message.content === '' ? [] : [message.content] };
      case 'tool':
        return { type: 'user', text: `${toolPrefix(message.name)}\n${message.content}` };
    }
  });
  // An empty model turn at the end renders the "assistant is speaking now" header.
  history.push({ type: 'model', response: [] });
  return history;
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

export function renderPrompt(chatWrapper: ChatWrapper, model: LlamaModel, messages: readonly ChatMessage[]): RenderedPrompt {
  const { contextText, stopGenerationTriggers } = chatWrapper.generateContextState({
    chatHistory: toChatHistory(messages),
  });
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
