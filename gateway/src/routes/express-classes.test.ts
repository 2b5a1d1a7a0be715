/**
 * The server's request and response classes carry express's prototypes from birth, so neither
 * express nor the direct dispatch has to swap a prototype on a live object (express-classes.ts
 * says why that matters), and express's helpers work on both paths.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import express from 'express';
import { expressHttpClasses } from './express-classes.js';

describe('expressHttpClasses', () => {
  const app = express();
  const before = { request: app.request, response: app.response };
  const classes = expressHttpClasses(app);
  const seen: Array<{ request: boolean; response: boolean }> = [];
  // Where the prototypes are checked: before express's own swap (the direct dispatch's place)
  // and in a route (after it).
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    seen.push({ request: Object.getPrototypeOf(req) === app.request, response: Object.getPrototypeOf(res) === app.response });
    app(req as Parameters<typeof app>[0], res as Parameters<typeof app>[1]);
  };
  app.get('/hello', (req, res) => {
    seen.push({ request: Object.getPrototypeOf(req) === app.request, response: Object.getPrototypeOf(res) === app.response });
    res.status(201).json({ app: req.app === app, path: req.path });
  });
  const server = createServer({ IncomingMessage: classes.IncomingMessage, ServerResponse: classes.ServerResponse }, listener);
  after(() => server.close());

  it('keeps what express put on its prototypes (app included) under the new ones', () => {
    assert.equal(Object.getPrototypeOf(app.request), before.request);
    assert.equal(Object.getPrototypeOf(app.response), before.response);
  });

  it('builds requests and responses that already have the prototypes express gives them, and its helpers work', async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const res = await fetch(`http://127.0.0.1:${port}/hello`);
    assert.equal(res.status, 201);
    assert.deepEqual(await res.json(), { app: true, path: '/hello' });
    assert.deepEqual(seen, [
      { request: true, response: true },
      { request: true, response: true },
    ]);
  });
});
