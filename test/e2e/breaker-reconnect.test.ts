/**
 * An upstream's breaker closes when its channel connects again, not only after the reset time.
 *
 * Auth is stopped; requests whose key has no cached authentication fail fast (503) and open auth's
 * breaker. Auth starts again on the same port while the breaker's reset time (60 s here) is far
 * away: the gateway must serve such a key again within seconds of auth listening, because the
 * breaker closes on the channel's reconnect. A breaker that opened while its upstream stayed
 * connected keeps its reset time.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { pino } from 'pino';
import { createBreaker } from '../../gateway/src/breaker.js';
import { closeBreakerOnReconnect } from '../../gateway/src/breaker-reconnect.js';
import { createGrpcChannel } from '../../lib/grpc/client.js';
import { AppError } from '../../lib/errors/app-error.js';
import { startPlatform, waitFor, type Platform } from '../helpers/platform.js';

const RESET_MS = 60_000;

async function chat(base: string, key: string): Promise<{ status: number; code: string | undefined }> {
  const r = await fetch(`${base}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'anything', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 }),
  });
  const body = await r.text();
  return { status: r.status, code: r.status === 200 ? undefined : (JSON.parse(body) as { error: { code: string } }).error.code };
}

describe('breakers close when their upstream reconnects', () => {
  let platform: Platform;

  before(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'xero-breaker-'));
    platform = await startPlatform({
      // A file database: the demo key survives auth's restart.
      authEnv: { AUTH_SQLITE_PATH: path.join(dir, 'auth.sqlite') },
      // No cached authentication to ride out the outage; a reset time no test waits out.
      gatewayEnv: { GATEWAY_AUTH_CACHE_TTL_MS: '1', GATEWAY_BREAKER_RESET_MS: String(RESET_MS) },
    });
  });
  after(async () => {
    await platform.stop();
  });

  it('auth restarted: requests are served again within seconds, although the breaker opened with a 60 s reset', async () => {
    const authBreaker = platform.gateway.breakers.find((b) => b.name === 'auth');
    assert.ok(authBreaker);
    assert.equal((await chat(platform.baseUrl(), platform.demoKey)).status, 200);

    const answers: Array<{ status: number; code: string | undefined; at: number }> = [];
    let running = true;
    const traffic = (async () => {
      while (running) {
        answers.push({ ...(await chat(platform.baseUrl(), platform.demoKey)), at: performance.now() });
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    let up = 0;
    try {
      // Down for 3 s: the traffic's failures open auth's breaker meanwhile.
      await platform.restartAuth(3000);
      up = performance.now();
      await waitFor(() => answers.some((a) => a.at > up && a.status === 200), 10_000, 'a request served after auth is back');
    } finally {
      running = false;
      await traffic;
    }
    const down = answers.filter((a) => a.at < up && a.status !== 200);
    assert.ok(down.length > 0, 'requests failed while auth was down');
    assert.deepEqual([...new Set(down.map((a) => a.status))], [503]);
    assert.ok(down.some((a) => a.code === 'circuit_open'), `auth's breaker opened (codes: ${[...new Set(down.map((a) => a.code))].join(', ')})`);
    const servedAt = answers.find((a) => a.at > up && a.status === 200)?.at ?? Number.NaN;
    console.log(`auth down 3 s: ${down.length} × 503; first request served ${(servedAt - up).toFixed(0)} ms after auth listened again (breaker reset ${RESET_MS} ms)`);
    assert.ok(servedAt - up < 5000, `served again ${(servedAt - up).toFixed(0)} ms after auth was back`);
    assert.equal(authBreaker.state(), 'closed');
  });
});

describe('closeBreakerOnReconnect', () => {
  const logger = pino({ level: 'silent' });
  const options = { errorThresholdPercentage: 50, volumeThreshold: 1, resetTimeoutMs: RESET_MS, rollingWindowMs: 10_000 };
  const bind = (server: Server, port: number): Promise<number> =>
    new Promise((resolve, reject) => server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));

  it('closes an open breaker when its channel connects; one that opened while connected keeps its reset time', async () => {
    const server = new Server();
    const port = await bind(server, 0);
    server.forceShutdown();
    const breaker = createBreaker('x', options, logger);
    const channel = createGrpcChannel(`127.0.0.1:${port}`);
    let again: Server | undefined;
    try {
      closeBreakerOnReconnect(channel, breaker, logger);
      channel.getConnectivityState(true);
      breaker.recordFailure(new AppError('unavailable', 'down'));
      await waitFor(() => breaker.state() === 'open', 1000, 'the breaker to open');
      // Nothing listens: it stays open (and the channel keeps trying).
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(breaker.state(), 'open');
      again = new Server();
      await bind(again, port);
      await waitFor(() => breaker.state() === 'closed', 5000, 'the breaker to close on reconnect');

      // Connected now: a breaker that opens sees no reconnect and stays open.
      breaker.recordFailure(new AppError('unavailable', 'failing while connected'));
      await waitFor(() => breaker.state() === 'open', 1000, 'the breaker to open again');
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(breaker.state(), 'open');
    } finally {
      channel.close();
      breaker.shutdown();
      again?.forceShutdown();
    }
  });
});
