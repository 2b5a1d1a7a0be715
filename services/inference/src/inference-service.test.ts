/**
 * The inference service over real gRPC: the worker, not its callers or its engines, fills the
 * sampling defaults (lib/chat/sampling.ts), and proto roles reach the engine as chat roles.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { InferenceServiceDefinition, Role, GenerateRequest } from '../../../gen/xerotier/inference/v1/inference_service.js';
import { SAMPLING_DEFAULTS } from '../../../lib/chat/sampling.js';
import { callOptions, createAppClient, createGrpcChannel } from '../../../lib/grpc/client.js';
import { loadInferenceConfig } from './config.js';
import type { Engine, GenerateParams } from './engines/engine.js';
import { startInferenceWorker } from './start.js';
import { startRecordingWorker } from '../../../test/helpers/recording-worker.js';

const { worker, seen, simulator } = await startRecordingWorker(4096);
const channel = createGrpcChannel(`127.0.0.1:${worker.port}`);
const client = createAppClient(InferenceServiceDefinition, channel, { address: `127.0.0.1:${worker.port}`, target: 'inference' });

after(async () => {
  channel.close();
  await worker.stop();
});

async function generate(over: Partial<GenerateRequest>): Promise<GenerateParams> {
  const request: GenerateRequest = GenerateRequest.fromPartial({
    requestId: `req-${seen.length}`,
    messages: [
      { role: Role.ROLE_DEVELOPER, content: 'Be brief.', name: '' },
      { role: Role.ROLE_USER, content: 'Hi', name: 'alice' },
    ],
    stop: [],
    ...over,
  });
  for await (const _ of client.generate(request, callOptions(request.requestId))) void _;
  const params = seen.at(-1);
  assert.ok(params, 'the engine was called');
  return params;
}

describe('inference service', () => {
  it('fills temperature and top_p a request leaves out with the shared defaults', async () => {
    const params = await generate({});
    assert.equal(params.temperature, SAMPLING_DEFAULTS.temperature);
    assert.equal(params.topP, SAMPLING_DEFAULTS.topP);
  });

  it('keeps the values a request sets, 0 included', async () => {
    const params = await generate({ temperature: 0, topP: 1 });
    assert.equal(params.temperature, 0);
    assert.equal(params.topP, 1);
  });

  it('hands the engine chat roles and names', async () => {
    const params = await generate({});
    assert.deepEqual(params.messages, [
      { role: 'developer', content: 'Be brief.' },
      { role: 'user', content: 'Hi', name: 'alice' },
    ]);
  });
});

describe('inference service: status stream', () => {
  it('sends the status at once, then again when it changes, without waiting for the interval', { timeout: 30_000 }, async () => {
    const watch = new AbortController();
    const updates = client.watchStatus({ intervalMs: 600_000 }, callOptions('watch', watch.signal))[Symbol.asyncIterator]();
    try {
      const first = await updates.next();
      assert.equal(first.value?.status?.inFlightCount, 0);
      // Past the coalescing pause, the stream waits for a change or the interval; a generation
      // starting and ending is a change.
      await new Promise((r) => setTimeout(r, 200));
      await generate({});
      const next = await updates.next();
      assert.equal(next.done, false, 'an update arrived long before the 10-minute interval');
      assert.ok(next.value?.status !== undefined);
    } finally {
      watch.abort();
      await updates.return?.(undefined).catch(() => undefined);
    }
  });
});

describe('inference service: reasoning text', () => {
  it('sends a leading <think>…</think> to `reasoning`, the rest to `text`, and keeps every token counted', async () => {
    const pieces = ['<thi', 'nk>Two and', ' two.</th', 'ink>\n\n', 'Four', '.'];
    const thinking: Engine = {
      ...simulator,
      async *generate() {
        for (const text of pieces) yield { type: 'delta', text, tokenCount: 1 };
        yield { type: 'final', finishReason: 'stop', usage: { promptTokens: 3, completionTokens: pieces.length } };
      },
    };
    const w = await startInferenceWorker(loadInferenceConfig({ INFERENCE_PORT: '0', INFERENCE_DRAIN_GRACE_MS: '100' }), {
      logger: pino({ level: 'silent' }),
      engine: thinking,
    });
    await w.ready;
    const ch = createGrpcChannel(`127.0.0.1:${w.port}`);
    try {
      const c = createAppClient(InferenceServiceDefinition, ch, { address: `127.0.0.1:${w.port}`, target: 'inference' });
      let reasoning = '';
      let text = '';
      let tokens = 0;
      const request = GenerateRequest.fromPartial({ requestId: 'think', messages: [{ role: Role.ROLE_USER, content: '2+2?' }] });
      for await (const e of c.generate(request, callOptions('think'))) {
        if (!e.delta) continue;
        reasoning += e.delta.reasoning;
        text += e.delta.text;
        tokens += e.delta.tokenCount;
        assert.ok(!e.delta.text.includes('<') && !e.delta.reasoning.includes('<'), 'no tag leaks');
      }
      assert.equal(reasoning, 'Two and two.');
      assert.equal(text, 'Four.');
      assert.equal(tokens, pieces.length);
    } finally {
      ch.close();
      await w.stop();
    }
  });
});
