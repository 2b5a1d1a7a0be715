/**
 * The headers of a chat completion as a client reads them, streamed or not: the request id, the
 * worker that answered and the key's rate-limit figures, each sent once, on the 200 itself.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startPlatform, type Platform } from '../helpers/platform.js';

describe('chat completion response headers', () => {
  let platform: Platform;
  before(async () => {
    platform = await startPlatform();
  });
  after(async () => platform.stop());

  const complete = (stream: boolean): Promise<Response> =>
    fetch(`${platform.baseUrl()}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${platform.demoKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'anything', messages: [{ role: 'user', content: 'Hello!' }], stream }),
    });

  for (const stream of [false, true]) {
    it(`${stream ? 'a stream' : 'a JSON response'}: request id, worker id and rate limits on the 200`, async () => {
      const res = await complete(stream);
      const text = await res.text();
      assert.equal(res.status, 200, text);
      assert.match(res.headers.get('content-type') ?? '', stream ? /^text\/event-stream/ : /^application\/json/);
      assert.ok(res.headers.get('x-request-id'));
      assert.ok(res.headers.get('x-xerotier-worker-id'));
      assert.equal(res.headers.get('x-ratelimit-limit'), '60', 'cpu_standard: 60 requests/min');
      assert.ok(Number(res.headers.get('x-ratelimit-remaining')) < 60);
      assert.equal(res.headers.get('x-ratelimit-limit-tokens'), '50000');
      assert.equal(res.headers.get('x-ratelimit-limit-requests'), '60');
      assert.match(res.headers.get('x-ratelimit-reset-requests') ?? '', /^(\d+m)?\d+m?s$/);
    });
  }
});
