/**
 * The stream's end of a chat completion as the gateway writes it, the way it was written before
 * (headers flushed on their own, the response corked per turn, one `res.write` per event, the
 * finish and usage chunks each their own write, then `res.end('data: [DONE]')`) and the way
 * gateway/src/openai/sse.ts writes it now (headers with the first events, the events of one turn
 * joined into one `res.write`, the last events and `[DONE]` in one `res.end`). A real node:http
 * server and a raw keep-alive client socket in this process, one stream after another: the role +
 * content event in one turn (the worker joins the tokens that are ready together into one
 * message), then the final in a later turn. CPU time (process.cpuUsage: server and client) per
 * stream, alternating rounds, medians, and the system calls of the whole process per stream
 * counted the same way when run under `strace -c -f` (see --strace-one).
 *
 *   node --import tsx bench/sse-writes.ts [--streams=4000] [--rounds=9]
 *   node --import tsx bench/sse-writes.ts --strace-one=old|now --streams=2000   # one side only, for strace -c
 */
import { once } from 'node:events';
import http, { type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import type { Response } from 'express';
import { chatChunk, chunkFrame } from '../gateway/src/chat/chunk-frame.js';
import { openSse } from '../gateway/src/openai/sse.js';
import { abRow, abTableHead } from './lib/ab-levers.js';

const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '4000' },
    rounds: { type: 'string', default: '9' },
    'strace-one': { type: 'string' },
  },
});
const streams = Number(values.streams);
const rounds = Number(values.rounds);

const HEADERS = { 'x-ratelimit-limit-requests': '100000', 'x-ratelimit-remaining-requests': '99999', 'x-request-id': 'req_0123456789abcdef01234567' };
const meta = { id: 'chatcmpl-0123456789abcdef01234567', created: 1_760_000_000, model: 'mock', fingerprint: 'fp_0123456789' };
const chunk = (delta: object, finishReason: string | null): Record<string, unknown> => chatChunk(meta, delta, finishReason, true);
const { head, tail } = chunkFrame(meta, true);
const TEXT = 'Hello! This is the benchmark answering in a few words, sixteen tokens.';
const usage = { prompt_tokens: 14, completion_tokens: 16, total_tokens: 30, prompt_tokens_details: { cached_tokens: 0 } };
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The writer before (gateway/src/openai/sse.ts at the starting commit, unchanged). */
function uncork(writer: OldWriter): void {
  writer.uncork();
}
class OldWriter {
  private corked = false;
  constructor(private readonly res: ServerResponse) {}
  send(data: unknown): Promise<void> {
    return this.write(`data: ${JSON.stringify(data)}\n\n`);
  }
  sendJson(json: string): Promise<void> {
    return this.write(`data: ${json}\n\n`);
  }
  done(): void {
    if (!this.res.writableEnded) this.res.end('data: [DONE]\n\n');
  }
  uncork(): void {
    this.corked = false;
    this.res.uncork();
  }
  private write(text: string): Promise<void> {
    const { res } = this;
    if (res.writableEnded || res.destroyed) return Promise.resolve();
    if (!this.corked) {
      this.corked = true;
      res.cork();
      setImmediate(uncork, this);
    }
    if (res.write(text)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  }
}

async function oldStream(res: ServerResponse): Promise<void> {
  res.writeHead(200, { ...HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.flushHeaders();
  const sse = new OldWriter(res);
  await sse.sendJson(`${head}${JSON.stringify({ role: 'assistant', content: TEXT })}${tail}`);
  await nextTurn();
  await sse.send(chunk({}, 'stop'));
  await sse.send({ ...chunk({}, null), choices: [], usage });
  sse.done();
}

async function nowStream(res: ServerResponse): Promise<void> {
  const sse = openSse(res as Response, HEADERS);
  await sse.sendJson(`${head}${JSON.stringify({ role: 'assistant', content: TEXT })}${tail}`);
  await nextTurn();
  const finish = `${head}{}${tail.replace('"finish_reason":null', `"finish_reason":${JSON.stringify('stop')}`)}`;
  sse.done(finish, JSON.stringify({ ...chunk({}, null), choices: [], usage }));
}

let side: (res: ServerResponse) => Promise<void> = nowStream;
const server = http.createServer((_req, res) => void side(res));
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
await once(socket, 'connect');
socket.setEncoding('latin1');
const REQUEST = 'POST /demo/chat/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n';

/** One stream: the request, then the response read to its last chunk. */
function oneStream(): Promise<void> {
  return new Promise((resolve) => {
    let tailText = '';
    const onData = (data: string): void => {
      tailText = (tailText + data).slice(-7);
      if (tailText.endsWith('\r\n0\r\n\r\n')) {
        socket.off('data', onData);
        resolve();
      }
    };
    socket.on('data', onData);
    socket.write(REQUEST);
  });
}

async function cpuNsPerStream(fn: (res: ServerResponse) => Promise<void>): Promise<number> {
  side = fn;
  const start = process.cpuUsage();
  for (let i = 0; i < streams; i++) await oneStream();
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / streams;
}

if (values['strace-one'] !== undefined) {
  const fn = values['strace-one'] === 'old' ? oldStream : nowStream;
  await cpuNsPerStream(fn); // warm-up
  process.stdout.write(`ready ${process.pid}\n`);
  await new Promise((resolve) => setTimeout(resolve, 1500)); // time for strace to attach
  await cpuNsPerStream(fn);
  process.stdout.write(`done ${streams}\n`);
} else {
  const lines = abTableHead(rounds, streams);
  lines.push(await abRow('one stream: role + content event, then finish, usage and [DONE] (server and client)', () => cpuNsPerStream(oldStream), () => cpuNsPerStream(nowStream), rounds));
  process.stdout.write(`${lines.join('\n')}\n`);
}
socket.destroy();
server.close();
