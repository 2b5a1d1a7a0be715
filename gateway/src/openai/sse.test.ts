import assert from 'node:assert/strict';
import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import type { Response } from 'express';
import { openSse, type SseWriter } from './sse.js';

/** A server on a free port whose one request is handed to `handle` as an open SSE stream. */
async function serve(handle: (sse: SseWriter, res: ServerResponse) => Promise<void> | void) {
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    void handle(openSse(res as Response, { 'x-test': 'yes' }), res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

/** The raw bytes of one HTTP/1.1 exchange, read until the server's last chunk. */
async function rawExchange(port: number): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  let raw = '';
  for await (const data of socket) {
    raw += String(data);
    if (raw.endsWith('\r\n0\r\n\r\n')) break;
  }
  socket.destroy();
  return raw;
}

/** The body of a chunked response as its chunks. */
function chunks(raw: string): string[] {
  const out: string[] = [];
  let rest = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  for (;;) {
    const eol = rest.indexOf('\r\n');
    const size = Number.parseInt(rest.slice(0, eol), 16);
    if (size === 0) return out;
    out.push(rest.slice(eol + 2, eol + 2 + size));
    rest = rest.slice(eol + 2 + size + 2);
  }
}

describe('SSE writer', () => {
  it('sends the headers with the first events; events ready together leave as one chunk, the last ones with [DONE]', async () => {
    const { server, port } = await serve(async (sse) => {
      await sse.sendJson('{"n":1}');
      await sse.send({ n: 2 });
      await new Promise((resolve) => setTimeout(resolve, 20));
      await sse.sendJson('{"n":3}');
      sse.done('{"n":4}', '{"n":5}');
    });
    try {
      const raw = await rawExchange(port);
      const head = raw.slice(0, raw.indexOf('\r\n\r\n')).toLowerCase();
      assert.match(head, /^http\/1\.1 200 ok/);
      assert.match(head, /content-type: text\/event-stream; charset=utf-8/);
      assert.match(head, /x-test: yes/);
      assert.match(head, /transfer-encoding: chunked/);
      assert.deepEqual(chunks(raw), ['data: {"n":1}\n\ndata: {"n":2}\n\n', 'data: {"n":3}\n\ndata: {"n":4}\n\ndata: {"n":5}\n\ndata: [DONE]\n\n']);
    } finally {
      server.close();
    }
  });

  it('a failure after events is the events written so far, then exactly one error event and no [DONE]', async () => {
    const { server, port } = await serve(async (sse) => {
      await sse.sendJson('{"n":1}');
      await new Promise((resolve) => setTimeout(resolve, 20));
      await sse.sendJson('{"n":2}');
      sse.error({ error: { message: 'boom' } });
      sse.done();
    });
    try {
      const body = chunks(await rawExchange(port)).join('');
      assert.equal(body, 'data: {"n":1}\n\ndata: {"n":2}\n\ndata: {"error":{"message":"boom"}}\n\n');
    } finally {
      server.close();
    }
  });

  it('waits for drain while the client does not read, and delivers everything once it does', async () => {
    const event = 'x'.repeat(64 * 1024);
    let sent = 0;
    let heldBack: Promise<void> | undefined;
    let stopped = false;
    const { server, port } = await serve(async (sse) => {
      // Write until one write is held back (the socket and the client's buffers full).
      for (let i = 0; i < 500 && heldBack === undefined; i++) {
        const write = sse.sendJson(`"${event}"`);
        sent += 1;
        const state = await Promise.race([write.then(() => 'written'), new Promise((resolve) => setImmediate(resolve, 'held'))]);
        if (state === 'held') heldBack = write;
      }
      stopped = true;
      await heldBack;
      sse.done();
    });
    try {
      const req = http.get({ port, host: '127.0.0.1' });
      const [res] = (await once(req, 'response')) as [IncomingMessage];
      res.pause();
      while (!stopped) await new Promise((resolve) => setTimeout(resolve, 10));
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (data: string) => (body += data));
      res.resume();
      await once(res, 'end');
      assert.ok(sent < 500, 'a write was held back before 500 events of 64 KiB');
      assert.equal(body, `data: "${event}"\n\n`.repeat(sent) + 'data: [DONE]\n\n');
    } finally {
      server.close();
    }
  });
});
