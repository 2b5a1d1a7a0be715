import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createToolCallAssembly } from '../../../../../lib/chat/tool-call-assembly.js';
import type { EngineEvent } from '../engine.js';
import { createToolCallOutput } from './tool-call-output.js';

type Delta = Extract<EngineEvent, { type: 'delta' }>;

function run(mode: 'tool' | 'either', pieces: string[]) {
  const out = createToolCallOutput(mode, () => 'call_1');
  const events: Delta[] = [];
  for (const p of pieces) events.push(...out.push(p, 1));
  const end = out.end();
  events.push(...end.events);
  const calls = createToolCallAssembly();
  events.forEach((e) => e.toolCalls?.forEach((c) => calls.add(c)));
  return { events, called: end.called, calls: calls.calls(), text: events.map((e) => e.text).join(''), tokens: events.reduce((n, e) => n + e.tokenCount, 0) };
}

describe('llama.cpp tool-call output', () => {
  const call = '{ "name": "get_weather", "arguments": {"city": "Paris", "days": [1, {"x": {}}]} }';
  it('streams the head, then the arguments as written, without the outer brace, at any piece size', () => {
    for (const pieces of [[call], [...call], call.match(/.{1,5}/g) ?? []]) {
      const r = run('tool', pieces);
      assert.equal(r.called, true);
      assert.deepEqual(r.calls, [{ id: 'call_1', name: 'get_weather', arguments: '{"city": "Paris", "days": [1, {"x": {}}]}' }]);
      assert.equal(r.text, '');
      assert.equal(r.tokens, pieces.length, 'every token is counted once');
      assert.equal(r.events[0]?.toolCalls?.[0]?.name, 'get_weather', 'the head comes first');
      assert.ok(r.events.slice(1).every((e) => e.toolCalls?.[0]?.name === undefined && e.toolCalls?.[0]?.id === undefined));
    }
  });
  it('with auto, text that does not open with { is content', () => {
    const r = run('either', ['  Hel', 'lo {x}']);
    assert.equal(r.called, false);
    assert.equal(r.text, '  Hello {x}');
    assert.equal(r.tokens, 2);
  });
  it('a call cut short keeps the arguments it has', () => {
    const r = run('tool', ['{"name":"f","arguments":{"a":', '1']);
    assert.equal(r.called, true);
    assert.equal(r.calls[0]?.arguments, '{"a":1');
  });
});
