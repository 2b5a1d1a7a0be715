import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { RequestLocals } from './request-context.js';
import { requestLogging } from './request-log.js';

/** A gateway-like server: the access log in front of handlers that answer 200, 503, and a probe's 503. */
describe('access log', () => {
  const lines: Array<{ level: number; msg: string; res?: { statusCode: number } }> = [];
  let server: Server;
  let base: string;

  before(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
        done();
      },
    });
    const log = requestLogging(pino({ level: 'info' }, sink));
    server = createServer((req, res) => {
      const withLocals = Object.assign(res, { locals: {} as RequestLocals });
      log(req, withLocals, () => {
        if (req.url === '/readyz') withLocals.locals.probe = true;
        res.statusCode = req.url === '/ok' ? 200 : 503;
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('logs a served request at info and a 5xx at error, and a probe (even a 503) not at info', async () => {
    for (const path of ['/ok', '/broken', '/readyz']) await (await fetch(base + path)).arrayBuffer();
    // The lines are written on 'finish', before the client sees the end of the body; wait a turn.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const byStatus = lines.map((l) => [l.res?.statusCode, l.level, l.msg]);
    assert.deepEqual(byStatus, [
      [200, 30, 'request completed'],
      [503, 50, 'request errored'],
    ]);
  });
});
