/**
 * Reasoning models (DeepSeek-R1, Qwen3, …) think aloud in `<think>…</think>` before they answer.
 * That text is OpenAI-compatible `reasoning_content`, never `content`: this splitter reads a
 * stream of text pieces and says which part of each piece is reasoning and which is answer.
 *
 * Only a `<think>` that opens the output (after whitespace) starts reasoning; the same tag later
 * in an answer is plain text. Tags split across pieces are held back until they are complete.
 * The whitespace right after `</think>` is dropped (templates put a blank line there).
 */
const OPEN = '<think>';
const CLOSE = '</think>';

export interface SplitText {
  reasoning: string;
  content: string;
}

export interface ReasoningSplitter {
  push(text: string): SplitText;
  /** The stream ended: whatever was held back. */
  end(): SplitText;
}

export function createReasoningSplitter(): ReasoningSplitter {
  let state: 'start' | 'thinking' | 'after' | 'answer' = 'start';
  let held = '';

  function step(): SplitText {
    const out: SplitText = { reasoning: '', content: '' };
    for (;;) {
      if (state === 'start') {
        const trimmed = held.trimStart();
        if (trimmed === '') return out;
        if (trimmed.startsWith(OPEN)) {
          held = trimmed.slice(OPEN.length);
          state = 'thinking';
          continue;
        }
        if (OPEN.startsWith(trimmed)) return out; // maybe the tag, not complete yet
        state = 'answer';
        continue;
      }
      if (state === 'thinking') {
        const at = held.indexOf(CLOSE);
        if (at >= 0) {
          out.reasoning += held.slice(0, at);
          held = held.slice(at + CLOSE.length);
          state = 'after';
          continue;
        }
        const keep = partialSuffix(held, CLOSE);
        out.reasoning += held.slice(0, held.length - keep);
        held = held.slice(held.length - keep);
        return out;
      }
      if (state === 'after') {
        held = held.trimStart();
        if (held === '') return out;
        state = 'answer';
        continue;
      }
      out.content += held;
      held = '';
      return out;
    }
  }

  return {
    push(text) {
      held += text;
      return step();
    },
    end() {
      const out = step();
      if (state === 'thinking') out.reasoning += held;
      else if (state === 'start') out.content += held;
      held = '';
      return out;
    },
  };
}

/** Length of the longest suffix of `text` that is a proper prefix of `tag`. */
function partialSuffix(text: string, tag: string): number {
  for (let n = Math.min(text.length, tag.length - 1); n > 0; n--) {
    if (tag.startsWith(text.slice(text.length - n))) return n;
  }
  return 0;
}
