/**
 * The header block of a non-stream chat completion response, three ways, in one process:
 * alternating rounds, CPU ns per response (up to the header block, no socket), medians and the
 * ratio to the first. What the response carries is what the gateway sends: the request id, the
 * twelve rate-limit headers, the worker id, the content type and length.
 *
 * - set one by one: the request id when the request arrives, express's `res.set` for the
 *   rate-limit headers, `setHeader` for the rest, then the header block (as the gateway does);
 * - one writeHead after the request id: the rest in one `writeHead(status, headers)` (Node sets
 *   them one by one itself, since a header was set before);
 * - one writeHead for all: nothing set before, every header in one `writeHead(status, array)`
 *   (Node then validates each once and builds no header map), which would need the request id
 *   held back until the response is written on every path.
 *
 * - the stream's 200: the rate-limit headers set by the route and again by openSse's writeHead
 *   (as it was) or only by the writeHead (as now).
 *
 *   node --import tsx bench/response-headers.ts [--ops=5000] [--rounds=9]
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { parseArgs } from 'node:util';
import express, { type Response } from 'express';
import { rateLimitHeaders } from '../gateway/src/openai/rate-limit-headers.js';
import { abRow, abTableHead, cpuNsPerOp } from './lib/ab-levers.js';

const { values } = parseArgs({ options: { ops: { type: 'string', default: '5000' }, rounds: { type: 'string', default: '9' } } });
const ops = Number(values.ops);
const rounds = Number(values.rounds);

const app = express();
const socket = new Socket();
const status = { limit: 600, remaining: 598, resetTime: new Date(Date.now() + 30_000), unlimited: false };
const json = JSON.stringify({ id: 'chatcmpl-0123456789abcdef01234567', object: 'chat.completion', created: 1_760_000_000, model: 'mock' });
const REQUEST_ID = 'req_0123456789abcdef01234567';
const WORKER_ID = 'worker-0123';
const CONTENT_TYPE = 'application/json; charset=utf-8';
const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' };

function response(): Response {
  const req = new IncomingMessage(socket);
  req.method = 'POST';
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  const res = new ServerResponse(req);
  Object.setPrototypeOf(res, app.response);
  return res as unknown as Response;
}

const ways = {
  oneByOne(res: Response): void {
    res.setHeader('x-request-id', REQUEST_ID);
    res.set(rateLimitHeaders(status, status));
    res.setHeader('x-xerotier-worker-id', WORKER_ID);
    res.statusCode = 200;
    res.setHeader('content-type', CONTENT_TYPE);
    res.setHeader('content-length', Buffer.byteLength(json));
    res.writeHead(200);
  },
  writeHeadAfterId(res: Response): void {
    res.setHeader('x-request-id', REQUEST_ID);
    const headers = rateLimitHeaders(status, status);
    headers['x-xerotier-worker-id'] = WORKER_ID;
    headers['content-type'] = CONTENT_TYPE;
    headers['content-length'] = String(Buffer.byteLength(json));
    res.writeHead(200, headers);
  },
  writeHeadAll(res: Response): void {
    const headers = rateLimitHeaders(status, status);
    const all = ['x-request-id', REQUEST_ID];
    for (const name in headers) all.push(name, headers[name] as string);
    all.push('x-xerotier-worker-id', WORKER_ID, 'content-type', CONTENT_TYPE, 'content-length', String(Buffer.byteLength(json)));
    res.writeHead(200, all);
  },
  /** The stream's 200 as it was: the rate-limit headers set by the route, then again by openSse's writeHead. */
  streamTwice(res: Response): void {
    res.setHeader('x-request-id', REQUEST_ID);
    const headers = rateLimitHeaders(status, status);
    res.set(headers);
    res.setHeader('x-xerotier-worker-id', WORKER_ID);
    res.writeHead(200, { ...headers, ...SSE_HEADERS });
  },
  /** The stream's 200 now: the rate-limit headers only in openSse's writeHead. */
  streamOnce(res: Response): void {
    res.setHeader('x-request-id', REQUEST_ID);
    const headers = rateLimitHeaders(status, status);
    res.setHeader('x-xerotier-worker-id', WORKER_ID);
    res.writeHead(200, { ...headers, ...SSE_HEADERS });
  },
};

/** CPU ns per response of `way`, on `ops` fresh responses made outside the timed loop. */
function measure(way: (res: Response) => void): number {
  const responses = Array.from({ length: ops }, response);
  let i = 0;
  return cpuNsPerOp(() => way(responses[i++]!), ops);
}

const lines = abTableHead(rounds, ops);
lines.push(await abRow('set one by one → one writeHead after the request id', () => measure(ways.oneByOne), () => measure(ways.writeHeadAfterId), rounds));
lines.push(await abRow('set one by one → one writeHead for all', () => measure(ways.oneByOne), () => measure(ways.writeHeadAll), rounds));
lines.push(await abRow('stream 200: rate-limit headers set twice → once', () => measure(ways.streamTwice), () => measure(ways.streamOnce), rounds));
process.stdout.write(`${lines.join('\n')}\n`);
