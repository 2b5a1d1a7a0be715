/**
 * The server-streaming reader of lib/grpc/client.ts against a real inference worker (simulator
 * engine): the request leaves with the call, also on a channel that is not connected yet, and the
 * call does not keep the serialised request once it has been sent.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GenerateRequest, InferenceServiceDefinition, Role } from '../../gen/xerotier/inference/v1/inference_service.js';
import { startRecordingWorker } from '../../test/helpers/recording-worker.js';
import { callOptions, createAppClient, createGrpcChannel } from './client.js';

const { worker, seen } = await startRecordingWorker(1_000_000);
const channels: Array<{ close(): void }> = [];

after(async () => {
  for (const c of channels) c.close();
  await worker.stop();
});

/** A client on a channel of its own (not connected until its first call). */
function freshClient() {
  const channel = createGrpcChannel(`127.0.0.1:${worker.port}`);
  channels.push(channel);
  return createAppClient(InferenceServiceDefinition, channel, { address: `127.0.0.1:${worker.port}`, target: 'inference' });
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
});
