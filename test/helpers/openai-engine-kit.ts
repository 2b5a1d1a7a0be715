/**
 * Shared pieces of the openai engine tests (services/inference/src/engines/openai/*.test.ts): the mock upstream (test/fixtures), the messages,
 * collecting a generation, and a kit that closes every engine and mock a test file started.
 */
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { startMockOpenAI, type MockOpenAIOptions, type MockOpenAIServer } from '../fixtures/mock-openai-server.js';
import type { ChatMessage, Engine, EngineEvent, GenerateParams } from '../../services/inference/src/engines/engine.js';
import { createOpenAIEngine, type OpenAIEngineOptions } from '../../services/inference/src/engines/openai/openai-engine.js';

export const logger = pino({ level: 'silent' });
export const MESSAGES: ChatMessage[] = [
  { role: 'developer', content: 'You are terse.' },
  { role: 'user', content: 'Say hello to the world, please.', name: 'alice' },
];
export const UPSTREAM_MESSAGES = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Say hello to the world, please.', name: 'alice' },
];

export function params(over: Partial<GenerateParams> = {}): GenerateParams {
  return { requestId: 'req-1', messages: MESSAGES, stop: [], ...over };
}

export async function collect(iterable: AsyncIterable<EngineEvent>): Promise<{ text: string; deltas: EngineEvent[]; final: Extract<EngineEvent, { type: 'final' }> }> {
  const deltas: EngineEvent[] = [];
  let text = '';
  let final: Extract<EngineEvent, { type: 'final' }> | undefined;
  for await (const ev of iterable) {
    assert.equal(final, undefined, 'nothing after the final event');
    if (ev.type === 'delta') {
      deltas.push(ev);
      text += ev.text;
    } else final = ev;
  }
  assert.ok(final, 'exactly one final event');
  return { text, deltas, final };
}

export async function waitFor(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const start = performance.now();
  while (!cond()) {
    if (performance.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 1));
  }
}

export interface OpenAITestKit {
  /** Mocks and engines to close in the file's `after` hook (tests may push their own). */
  servers: MockOpenAIServer[];
  engines: Engine[];
  /** A started engine in front of a fresh mock upstream. */
  setup(mockOpts?: MockOpenAIOptions, engineOpts?: Partial<OpenAIEngineOptions>): Promise<{ mock: MockOpenAIServer; engine: Engine }>;
  closeAll(): Promise<void>;
}

export function openAITestKit(): OpenAITestKit {
  const servers: MockOpenAIServer[] = [];
  const engines: Engine[] = [];
  return {
    servers,
    engines,
    async setup(mockOpts = {}, engineOpts = {}) {
      const mock = await startMockOpenAI(mockOpts);
      servers.push(mock);
      const engine = createOpenAIEngine({ baseUrl: mock.url, contextWindow: 4096, ...engineOpts }, { logger });
      engines.push(engine);
      await engine.start();
      return { mock, engine };
    },
    async closeAll() {
      await Promise.all(engines.map((e) => e.close()));
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}
