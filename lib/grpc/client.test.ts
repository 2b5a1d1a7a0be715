/**
 * The server-streaming reader of lib/grpc/client.ts against a real inference worker (simulator
 * engine): the request leaves with the call, also on a channel that is not connected yet, and the
 * call does not keep the serialised request once it has been sent; a CallCancel stops a call as
 * an AbortSignal does.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GenerateRequest, InferenceServiceDefinition, Role } from '../../gen/xerotier/inference/v1/inference_service.js';
import { pino } from 'pino';
import { loadInferenceConfig } from '../../services/inference/src/config.js';
import { createSimulatorEngine } from '../../services/inference/src/engines/simulator/simulator-engine.js';
import { startInferenceWorker } from '../../services/inference/src/start.js';
import { startRecordingWorker } from '../../test/helpers/recording-worker.js';
import { CallCancel } from './call-cancel.js';
import { callOptions, createAppClient, createGrpcChannel } from './client.js';

const { worker, seen } = await startRecordingWorker(1_000_000);
const channels: Array<{ close(): void }> = [];

// A worker (simulator engine, not inference) whose answers stop after one token and wait to be
// cancelled, reporting each cancellation it sees.
const cancelledOnWorker: string[] = [];
const hanging = await startInferenceWorker(loadInferenceConfig({ INFERENCE_PORT: '0', INFERENCE_DRAIN_GRACE_MS: '100' }), {
  logger: pino({ level: 'silent' }),
  engine: createSimulatorEngine({
    tokensPerSecond: 0,
    timeToFirstTokenMs: 0,
    responseTokens: 8,
    contextWindow: 1_000_000,
    failAfterTokens: 0,
    hangAfterTokens: 1,
    crashAfterTokens: 0,
    onCancel: (id) => cancelledOnWorker.push(id),
  }),
});
await hanging.ready;

after(async () => {
  for (const c of channels) c.close();
  await worker.stop();
  await hanging.stop();
});

/** A client on a channel of its own (not connected until its first call). */
function freshClient(port = worker.port) {
  const channel = createGrpcChannel(`127.0.0.1:${port}`);
  channels.push(channel);
  return createAppClient(InferenceServiceDefinition, channel, { address: `127.0.0.1:${port}`, target: 'inference' });
}

function request(id: string, content: string): GenerateRequest {
  return GenerateRequest.fromPartial({ requestId: id, messages: [{ role: Role.ROLE_USER, content, name: '' }], stop: [] });
}

/** What grpc-js's resolving call holds of a request written before its channel-side call existed. */
function heldRequest(stream: AsyncIterator<unknown>): unknown {
  const call = (stream as unknown as { call?: { pendingMessage?: unknown; child?: unknown } }).call;
  assert.ok(call, 'the stream has its grpc-js call');
  assert.ok('pendingMessage' in call && 'child' in call, "grpc-js's resolving call no longer has the fields this reader relies on");
  return call.pendingMessage;
}

describe('server-streaming reader', () => {
  it('sends the request on a channel that is not connected yet, and on a connected one', async () => {
    const client = freshClient();
    for (const id of ['cold', 'warm']) {
      const events: unknown[] = [];
      for await (const e of client.generate(request(id, `hello ${id}`), callOptions(id))) events.push(e);
      assert.equal(seen.at(-1)?.requestId, id);
      assert.deepEqual(seen.at(-1)?.messages, [{ role: 'user', content: `hello ${id}` }]);
      assert.ok(events.length >= 3, 'start, deltas and final arrived');
    }
  });

  it('does not keep the serialised request once the worker answered', async () => {
    const client = freshClient();
    const prompt = 'x'.repeat(6_000);
    for (const id of ['first-call', 'second-call']) {
      const stream = client.generate(request(id, prompt), callOptions(id))[Symbol.asyncIterator]();
      const first = await stream.next();
      assert.equal(first.done, false);
      assert.equal(seen.at(-1)?.messages[0]?.content, prompt, 'the whole prompt reached the worker');
      assert.equal(heldRequest(stream), null, 'the resolving call dropped the request');
      for (let next = await stream.next(); next.done !== true; next = await stream.next()) void next;
    }
  });

  it('stops a call when its CallCancel is aborted, as an AbortSignal would, and the worker sees it', async () => {
    const client = freshClient(hanging.port);
    const cancel = new CallCancel();
    const stream = client.generate(request('cancelled-call', 'hello'), callOptions('cancelled-call', cancel, 60_000))[Symbol.asyncIterator]();
    const events: unknown[] = [];
    // start and the one token the engine produces before it waits
    events.push((await stream.next()).value, (await stream.next()).value);
    const waiting = stream.next();
    cancel.abort(new Error('the caller left'));
    await assert.rejects(waiting, (err: Error & { code?: string }) => {
      assert.equal(err.name, 'AppError');
      assert.equal(err.code, 'cancelled');
      return true;
    });
    assert.equal(events.length, 2);
    for (let i = 0; i < 50 && !cancelledOnWorker.includes('cancelled-call'); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(cancelledOnWorker.includes('cancelled-call'), 'the worker stopped generating');
  });

  it('does not start a call whose CallCancel is already aborted', async () => {
    const client = freshClient(hanging.port);
    const cancel = new CallCancel();
    cancel.abort(new Error('gone before the call'));
    const stream = client.generate(request('never-sent', 'hello'), callOptions('never-sent', cancel))[Symbol.asyncIterator]();
    await assert.rejects(stream.next(), (err: Error & { code?: string }) => err.code === 'cancelled');
  });
});
