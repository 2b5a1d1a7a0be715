/** SseParser (eventsource-parser plus byte chunks and end-of-body flushing): properties and edge cases. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createParser } from 'eventsource-parser';
import { SseParser, type SseEvent } from './sse.js';

type Line =
  | { kind: 'data' | 'event' | 'id' | 'comment'; value: string; spaced: boolean }
  | { kind: 'retry' };

const text = fc.string({ unit: 'binary', maxLength: 12 }).filter((s) => !/[\r\n\0\uFEFF]/.test(s));
const lineArb: fc.Arbitrary<Line> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('data' as const), value: text, spaced: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('event' as const), value: text, spaced: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('id' as const), value: text, spaced: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('comment' as const), value: text, spaced: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'retry' as const }) },
);
const streamArb = fc.record({
  blocks: fc.array(fc.array(lineArb, { maxLength: 5 }), { maxLength: 8 }),
  endings: fc.array(fc.constantFrom('\n', '\r\n', '\r'), { minLength: 1, maxLength: 5 }),
});

/** Serializes blocks (each ended by a blank line) and the events a correct parser must produce. */
function serialize(blocks: Line[][], endings: string[]): { wire: string; expected: SseEvent[] } {
  const lines: string[] = [];
  const expected: SseEvent[] = [];
  for (const block of blocks) {
    const data: string[] = [];
    let event = '';
    let id: string | undefined;
    for (const l of block) {
      if (l.kind === 'retry') {
        lines.push('retry: 1000');
        continue;
      }
      // Without the optional space, a value starting with a space would lose nothing; with it, one space goes.
      const sep = l.spaced || l.value.startsWith(' ') ? ': ' : ':';
      lines.push(l.kind === 'comment' ? `:${l.value}` : `${l.kind}${sep}${l.value}`);
      if (l.kind === 'data') data.push(l.value);
      else if (l.kind === 'event') event = l.value;
      else if (l.kind === 'id') id = l.value;
    }
    lines.push('');
    if (data.length > 0) expected.push({ event: event || 'message', data: data.join('\n'), ...(id !== undefined ? { id } : {}) });
  }
  let wire = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    let eol = endings[i % endings.length] ?? '\n';
    // "\r" then a blank line ended by "\n…" would read as one CRLF: use CRLF there instead.
    const next = lines[i + 1];
    if (eol === '\r' && next === '' && (endings[(i + 1) % endings.length] ?? '\n').startsWith('\n')) eol = '\r\n';
    wire += line + eol;
  }
  return { wire, expected };
}

function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % (bytes.length + 1))))].sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    parts.push(bytes.subarray(prev, p));
    prev = p;
  }
  return parts;
}

describe('SseParser', () => {
  it('property: any byte split of a valid SSE stream parses to the same events', () => {
    fc.assert(
      fc.property(streamArb, fc.array(fc.nat(), { maxLength: 40 }), ({ blocks, endings }, cuts) => {
        const { wire, expected } = serialize(blocks, endings);
        const bytes = new TextEncoder().encode(wire);
        const parser = new SseParser();
        const got: SseEvent[] = [];
        for (const part of splitAt(bytes, cuts)) got.push(...parser.feed(part));
        got.push(...parser.end());
        assert.deepEqual(got, expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: agrees with eventsource-parser on whole streams', () => {
    fc.assert(
      fc.property(streamArb, ({ blocks, endings }) => {
        // A trailing comment line: a stream ending in a lone CR is otherwise held back by the
        // oracle (it waits for a possible LF); the comment changes no events.
        const wire = `${serialize(blocks, endings).wire}:eof\n`;
        const oracle: SseEvent[] = [];
        const p = createParser({
          onEvent: (e) => oracle.push({ event: e.event ?? 'message', data: e.data, ...(e.id !== undefined ? { id: e.id } : {}) }),
        });
        p.feed(wire);
        const ours = new SseParser();
        assert.deepEqual([...ours.feed(wire), ...ours.end()], oracle);
      }),
      { numRuns: 1000 },
    );
  });

  it('dispatches a final event whose blank line never came, and handles a CR split from its LF', () => {
    const p = new SseParser();
    assert.deepEqual(p.feed('data: a\r'), []);
    assert.deepEqual(p.feed('\n\r'), [{ event: 'message', data: 'a' }]);
    assert.deepEqual(p.feed('\ndata: [DONE]\n'), []);
    assert.deepEqual(p.end(), [{ event: 'message', data: '[DONE]' }]);
  });
});
