/**
 * Per-request pieces of the gateway's chat path, each the way it was done before and the way it is
 * done now, in one process: alternating batches, CPU time (process.cpuUsage) per operation, median
 * of the rounds and the ratio new/old. A microbenchmark: it says what one lever saves per request
 * in isolation; the CPU per request of the whole gateway is bench/cpu-per-request.ts.
 *
 * The Generate stream lever is measured with a gRPC server in the same process (its CPU is in both
 * columns), `--calls` calls per round.
 *
 *   node --import tsx bench/gateway-hotpath.ts [--ops=20000] [--rounds=7] [--calls=400]
 */
import { AsyncResource } from 'node:async_hooks';
import { createHmac, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { parseArgs } from 'node:util';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createChannel, createClientFactory, createServer, Metadata } from 'nice-grpc';
import { Registry } from 'prom-client';
import { GenerateRequest, GenerateResponse, InferenceServiceDefinition } from '../gen/xerotier/inference/v1/inference_service.js';
import { callOptions, createAppClient } from '../lib/grpc/client.js';
import { chatChunk, chunkFrame } from '../gateway/src/chat/chunk-frame.js';
import { createRequestSignal, OpenRequests, type Departure } from '../gateway/src/chat/request-signal.js';
import { createHttpMetrics, httpMetricsMiddleware, routeMeasure } from '../lib/metrics/http.js';
import { createRequestIds } from '../gateway/src/request-id.js';
import { authCacheKey, authCacheSecret, type AuthInput } from '../gateway/src/auth-cache.js';
import { createLogger } from '../lib/logging/logger.js';
import { installLeanAsyncResourceBind } from '../lib/process/lean-async-bind.js';
import { abRow, abTableHead, cpuNsPerCall, cpuNsPerOp, type AsyncLever, type Lever } from './lib/ab-levers.js';

const { values } = parseArgs({
  options: { ops: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '7' }, calls: { type: 'string', default: '400' } },
});
const ops = Number(values.ops);
const calls = Number(values.calls);
const rounds = Number(values.rounds);

const nextId = createRequestIds();
const RELEASED = new DOMException('released', 'AbortError');
const requests = new OpenRequests(new AbortController().signal);
const logger = createLogger('gateway', 'warn');
const meta = { id: 'chatcmpl-0123456789abcdef01234567', created: 1_760_000_000, model: 'demo-model', fingerprint: 'fp_0123456789' };
const { head, tail } = chunkFrame(meta, false);
const TOKENS = 16;
let sink = 0;
const CHAT_ROUTE = '/:project/:endpoint/v1/chat/completions';
const httpMetrics = createHttpMetrics(new Registry());
const metricsMiddleware = httpMetricsMiddleware(httpMetrics, { mounts: ['/:project/v1/management'] });
const measure = routeMeasure(httpMetrics);
/** A finished response: `finish`, then `close`, as Node emits them. */
const finishedResponse = (): ServerResponse => Object.assign(new EventEmitter(), { writableFinished: true, statusCode: 200 }) as unknown as ServerResponse;
const routedRequest = { route: { path: CHAT_ROUTE }, baseUrl: '' } as unknown as IncomingMessage;

const authInput: AuthInput = { apiKey: `xero_demo_${randomBytes(24).toString('base64url')}`, project: 'demo', endpoint: 'chat', scope: 1 };
const hmacSecret = randomBytes(32);
const digestSecret = authCacheSecret();

/** Node's own AsyncResource bind (a subclass keeps it) and the lean one (lib/process/lean-async-bind.ts). */
class NodeBindResource extends AsyncResource {}
class LeanBindResource extends AsyncResource {}
installLeanAsyncResourceBind(LeanBindResource.prototype);
const onConnect = function (this: unknown, a: unknown): unknown {
  return a;
};

const levers: Lever[] = [
  {
    // What ClientHttp2Session.request() does once per stream, i.e. per gRPC call.
    name: 'AsyncResource bind of an HTTP/2 request (Node 20 bind vs the lean one)',
    old: () => void (sink += new NodeBindResource('PendingRequest').bind(onConnect.bind(null)).length),
    now: () => void (sink += new LeanBindResource('PendingRequest').bind(onConnect.bind(null)).length),
  },
  {
    name: 'auth cache key (createHmac per request vs two one-shot hashes of strings)',
    old: () =>
      void (sink += createHmac('sha256', hmacSecret)
        .update(JSON.stringify([authInput.apiKey, authInput.project, authInput.endpoint, authInput.scope]))
        .digest('hex').length),
    now: () => void (sink += authCacheKey(digestSecret, authInput).length),
  },
  {
    name: 'request id',
    old: () => void (sink += `req_${randomBytes(12).toString('hex')}`.length),
    now: () => void (sink += nextId().length),
  },
  {
    name: 'release an attempt (abort its controller)',
    old: () => new AbortController().abort(),
    now: () => new AbortController().abort(RELEASED),
  },
  {
    name: 'request signal with the client-gone watch',
    old: () => {
      // A controller per request aborted on the response's close, followed by the request signal.
      const res = new EventEmitter();
      const gone = new AbortController();
      res.on('close', () => gone.abort());
      const s = createRequestSignal({ remainingMs: 60_000, clientGone: gone.signal, requests });
      s.dispose();
    },
    now: () => {
      const res = new EventEmitter();
      let g: (() => void) | undefined;
      const clientGone: Departure = {
        watch(watcher) {
          g = (): void => watcher.gone(undefined);
          res.on('close', g);
        },
        unwatch() {
          if (g) res.off('close', g);
        },
      };
      const s = createRequestSignal({ remainingMs: 60_000, clientGone, requests });
      s.dispose();
    },
  },
  {
    name: `idle timer restarted on ${TOKENS} events`,
    old: () => {
      let t = setTimeout(() => undefined, 60_000);
      for (let i = 0; i < TOKENS; i++) {
        clearTimeout(t);
        t = setTimeout(() => undefined, 60_000);
      }
      clearTimeout(t);
    },
    now: () => {
      const t = setTimeout(() => undefined, 60_000);
      for (let i = 0; i < TOKENS; i++) t.refresh();
      clearTimeout(t);
    },
  },
  {
    name: `${TOKENS} SSE chunks serialised`,
    old: () => {
      for (let i = 0; i < TOKENS; i++) sink += `data: ${JSON.stringify(chatChunk(meta, { content: 'tok' }, null, false))}\n\n`.length;
    },
    now: () => {
      for (let i = 0; i < TOKENS; i++) sink += `data: ${head}${JSON.stringify({ content: 'tok' })}${tail}\n\n`.length;
    },
  },
  {
    name: 'HTTP metrics of one request (middleware, route from express vs known route)',
    old: () => {
      const res = finishedResponse();
      metricsMiddleware(routedRequest, res, () => undefined);
      res.emit('finish');
      res.emit('close');
    },
    now: () => {
      const res = finishedResponse();
      measure(res)(CHAT_ROUTE);
      res.emit('finish');
      res.emit('close');
    },
  },
  {
    name: 'request logger made although nothing logs',
    old: () => void (sink += logger.child({ req: { method: 'POST', url: '/demo/chat/v1/chat/completions', id: 'req_x' } }) ? 1 : 0),
    now: () => void (sink += 0),
  },
];

/**
 * A Generate call of 16 tokens read to its end, as generation.ts reads it (iterate, then
 * `return()`): through nice-grpc's own server-streaming method (the async-generator layers the
 * client wrapped before, and its `call.cancel()` at the end; the wrapper's own per-message promise
 * is not counted, so the old figure is a lower bound) vs lib/grpc/client.ts's direct reader.
 */
async function generateLever(): Promise<{ lever: AsyncLever; bindLever: AsyncLever; close: () => Promise<void> }> {
  const server = createServer();
  const events: GenerateResponse[] = [
    GenerateResponse.fromPartial({ start: { model: 'mock', systemFingerprint: 'fp', workerId: 'w1', promptTokens: 12 } }),
    ...Array.from({ length: TOKENS }, () => GenerateResponse.fromPartial({ delta: { text: 'tok', tokenCount: 1 } })),
    GenerateResponse.fromPartial({ final: { usage: { promptTokens: 12, completionTokens: TOKENS } } }),
  ];
  const unused = (): never => {
    throw new Error('not in this benchmark');
  };
  server.add(InferenceServiceDefinition, {
    async *generate() {
      for (const e of events) yield e;
    },
    getStatus: unused,
    watchStatus: unused,
    embed: unused,
  } as never);
  const port = await server.listen('127.0.0.1:0');
  const channel = createChannel(`127.0.0.1:${port}`);
  const niceClient = createClientFactory().create(InferenceServiceDefinition, channel);
  const appClient = createAppClient(InferenceServiceDefinition, channel, { address: `127.0.0.1:${port}`, target: 'inference', serviceToken: 'bench' });
  const request = GenerateRequest.fromPartial({ requestId: 'req_bench', maxTokens: TOKENS });
  const read = async (stream: AsyncIterable<GenerateResponse>): Promise<void> => {
    const it = stream[Symbol.asyncIterator]();
    for (;;) {
      const next = await it.next();
      if (next.done) break;
      sink += 1;
    }
    await it.return?.();
  };
  const nodeBind = Object.getOwnPropertyDescriptor(AsyncResource.prototype, 'bind') as PropertyDescriptor;
  const leanBind = Object.getOwnPropertyDescriptor(LeanBindResource.prototype, 'bind') as PropertyDescriptor;
  const withBind = async (bind: PropertyDescriptor, fn: () => Promise<void>): Promise<void> => {
    Object.defineProperty(AsyncResource.prototype, 'bind', bind);
    try {
      await fn();
    } finally {
      Object.defineProperty(AsyncResource.prototype, 'bind', nodeBind);
    }
  };
  const kept = (): Promise<void> => read(appClient.generate(request, callOptions('req_bench', undefined, 60_000)));
  return {
    bindLever: {
      name: `the same call through lib/grpc/client.ts, Node's AsyncResource bind vs the lean one`,
      old: () => withBind(nodeBind, kept),
      now: () => withBind(leanBind, kept),
    },
    lever: {
      name: `Generate call of ${TOKENS} tokens read to its end (gRPC server in process)`,
      old: () => read(niceClient.generate(request, { metadata: Metadata({ 'x-request-id': 'req_bench', 'x-service-token': 'bench' }) })),
      now: () => read(appClient.generate(request, callOptions('req_bench', undefined, 60_000))),
    },
    close: async () => {
      channel.close();
      await server.shutdown();
    },
  };
}

const lines = abTableHead(rounds, ops);
for (const lever of levers) lines.push(await abRow(lever.name, () => cpuNsPerOp(lever.old, ops), () => cpuNsPerOp(lever.now, ops), rounds));
const generate = await generateLever();
lines.push(await abRow(generate.lever.name, () => cpuNsPerCall(generate.lever.old, calls), () => cpuNsPerCall(generate.lever.now, calls), rounds));
lines.push(await abRow(generate.bindLever.name, () => cpuNsPerCall(generate.bindLever.old, calls), () => cpuNsPerCall(generate.bindLever.now, calls), rounds));
await generate.close();
process.stdout.write(`${lines.join('\n')}\n`);
if (sink < 0) process.stdout.write('');
