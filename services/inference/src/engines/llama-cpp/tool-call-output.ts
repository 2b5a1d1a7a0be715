/**
 * Turns the text of a tool-call generation (output-plan.ts: `{"name": "…", "arguments": {…}}`,
 * or, with tool_choice `auto`, maybe plain text) into engine events as it streams: the call's
 * head (index 0, a fresh id, the name) once the name is complete, then the arguments' JSON text
 * in fragments as the model writes them. The outer object's closing `}` is held back (it may be
 * the last character) and dropped at the end. Text that does not open with `{` is plain content.
 * Token counts of held-back text move to the next event, so they always add up.
 */
import type { EngineEvent } from '../engine.js';

type Delta = Extract<EngineEvent, { type: 'delta' }>;

const HEAD = /^\s*\{\s*"name"\s*:\s*"([^"\\]*)"\s*,\s*"arguments"\s*:\s*/;
const TAIL = /\s*(\}\s*)?$/;

export interface ToolCallOutput {
  push(text: string, tokenCount: number): Delta[];
  /** The generation ended; `called` says whether the output was a tool call. */
  end(): { events: Delta[]; called: boolean };
}

export function createToolCallOutput(mode: 'tool' | 'either', newId: () => string): ToolCallOutput {
  let state: 'undecided' | 'text' | 'head' | 'arguments' = mode === 'tool' ? 'head' : 'undecided';
  let held = '';
  let heldTokens = 0;
  let argumentsStarted = false;

  function take(tokens: number): number {
    const n = heldTokens + tokens;
    heldTokens = 0;
    return n;
  }

  function step(tokens: number): Delta[] {
    if (state === 'undecided') {
      const trimmed = held.trimStart();
      if (trimmed === '') {
        heldTokens += tokens;
        return [];
      }
      state = trimmed.startsWith('{') ? 'head' : 'text';
    }
    if (state === 'text') {
      const text = held;
      held = '';
      return [{ type: 'delta', text, tokenCount: take(tokens) }];
    }
    if (state === 'head') {
      const m = HEAD.exec(held);
      if (!m) {
        heldTokens += tokens;
        return [];
      }
      state = 'arguments';
      held = held.slice(m[0].length);
      const head: Delta = { type: 'delta', text: '', tokenCount: take(tokens), toolCalls: [{ index: 0, id: newId(), name: m[1], arguments: '' }] };
      return [head, ...step(0)];
    }
    // arguments: everything but leading whitespace and a trailing "}" (and whitespace around it)
    if (!argumentsStarted) {
      held = held.trimStart();
      argumentsStarted = held !== '';
    }
    const tail = TAIL.exec(held)?.[0] ?? '';
    const ready = held.slice(0, held.length - tail.length);
    held = tail;
    if (ready === '') {
      heldTokens += tokens;
      return [];
    }
    return [{ type: 'delta', text: '', tokenCount: take(tokens), toolCalls: [{ index: 0, arguments: ready }] }];
  }

  return {
    push(text, tokenCount) {
      held += text;
      return step(tokenCount);
    },
    end() {
      if (state === 'arguments') {
        // A complete call ends with the outer "}"; a cut-short one keeps what it has.
        const rest = /\}\s*$/.test(held) ? held.replace(/\s*\}\s*$/, '') : held;
        held = '';
        const events: Delta[] = rest !== '' || heldTokens > 0 ? [{ type: 'delta', text: '', tokenCount: take(0), toolCalls: [{ index: 0, arguments: rest }] }] : [];
        return { events, called: true };
      }
      // Undecided, text, or a head that never completed (cut short): what there is, as text.
      const events: Delta[] = held !== '' || heldTokens > 0 ? [{ type: 'delta', text: held, tokenCount: take(0) }] : [];
      held = '';
      return { events, called: false };
    },
  };
}
