/**
 * Calls through the gRPC front door leave usage records like HTTP requests: one per
 * authenticated call, with the usage the caller saw, and errors with their status and code.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createChatClient, ChatClientError } from '../../client/chat-client.js';
import { startPlatform } from '../helpers/platform.js';

interface RecordJson {
  id: string;
  status: number;
  error_code: string | null;
  prompt_tokens: number;
  completion_tokens: number;
}

describe('usage ledger: gRPC front door', () => {
  it('records every authenticated call with the usage the caller saw', async () => {
    const platform = await startPlatform();
    const client = createChatClient({ address: `127.0.0.1:${platform.gateway.grpcPort}`, apiKey: platform.demoKey });
    try {
      const request = { project: 'demo', endpoint: 'chat', messages: [{ role: 'user' as const, content: 'hello' }], maxCompletionTokens: 5 };
      const seen = new Map<string, number>();
      for (let i = 0; i < 3; i++) {
        let requestId = '';
        const done = await client.complete(request, { onMetadata: (m) => (requestId = m['x-request-id'] ?? '') });
        seen.set(requestId, done.usage.promptTokens + done.usage.completionTokens);
      }
      // A refused call (invalid argument) after authentication is recorded too.
      await assert.rejects(client.complete({ ...request, temperature: 5 }), (err: unknown) => err instanceof ChatClientError);

      let records: RecordJson[] = [];
      const until = Date.now() + 5000;
      while (records.length < 4 && Date.now() < until) {
        const res = await fetch(`http://127.0.0.1:${platform.gateway.port}/demo/v1/usage/records?start_time=0`, {
          headers: { authorization: `Bearer ${platform.demoKey}` },
        });
        records = ((await res.json()) as { data: RecordJson[] }).data;
        if (records.length < 4) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(records.length, 4, JSON.stringify(records));
      for (const [id, total] of seen) {
        const r = records.find((x) => x.id === id);
        assert.ok(r, `a record for ${id}`);
        assert.equal(r.status, 200);
        assert.equal(r.prompt_tokens + r.completion_tokens, total, 'the tokens the caller saw');
      }
      const refused = records.find((r) => !seen.has(r.id));
      assert.equal(refused?.status, 400);
      assert.equal(refused?.error_code, 'invalid_request');
    } finally {
      client.close();
      await platform.stop();
    }
  });
});
