/** Shared pieces of the gRPC front-door tests: a client on the platform's gateway and an assertion on its errors. */
import assert from 'node:assert/strict';
import type { Status } from 'nice-grpc';
import { ChatClientError, createChatClient, type ChatClient, type ChatRequest } from '../../client/chat-client.js';
import type { Platform } from '../helpers/platform.js';

export const ask = (extra: Partial<ChatRequest> = {}): ChatRequest => ({
  project: 'demo',
  endpoint: 'chat',
  messages: [{ role: 'user', content: 'hi' }],
  maxCompletionTokens: 5,
  ...extra,
});

export function clientFor(platform: Platform, apiKey = platform.demoKey): ChatClient {
  return createChatClient({ address: `127.0.0.1:${platform.gateway.grpcPort}`, apiKey });
}

/** Awaits a failure and checks its gRPC status and platform code; returns the error for more checks. */
export async function failure(promise: Promise<unknown>, status: Status, code: string): Promise<ChatClientError> {
  const err = await promise.then(
    () => assert.fail('expected the call to fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ChatClientError, `a ChatClientError, got ${String(err)}`);
  assert.equal(err.status, status, `status of ${err.code}: ${err.message}`);
  assert.equal(err.code, code);
  return err;
}
