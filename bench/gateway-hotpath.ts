/**
 * Per-request pieces of the gateway's chat path, each the way it was done before and the way it is
 * done now, in one process: alternating batches, CPU time (process.cpuUsage) per operation, median
 * of the rounds and the ratio new/old. A microbenchmark: it says what one lever saves per request
 * in isolation; the CPU per request of the whole gateway is bench/cpu-per-request.ts.
 *
 *   node --import tsx bench/gateway-hotpath.ts [--ops=20000] [--rounds=7]
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { parseArgs } from 'node:util';
import { createRequestSignal, type Departure } from '../gateway/src/chat/request-signal.js';
import { createRequestIds } from '../gateway/src/request-id.js';
import { createLogger } from '../lib/logging/logger.js';
import { fmt, median } from './lib/stats.js';

const { values } = parseArgs({ options: { ops: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '7' } } });
const ops = Number(values.ops);
const rounds = Number(values.rounds);

interface Lever {
  name: string;
  old: () => void;
  now: () => void;
}

const nextId = createRequestIds();
const RELEASED = new DOMException('released', 'AbortError');
const shutdown = new AbortController().signal;
const logger = createLogger('gateway', 'warn');
const chunkOf = (delta: object, meta: { id: string; created: number; model: string; fingerprint: string }) => ({
  id: meta.id,
  object: 'chat.completion.chunk',
  created: meta.created,
  model: meta.model,
  service_tier: null,
  system_fingerprint: meta.fingerprint,
  choices: [{ index: 0, delta, logprobs: null, finish_reason: null }],
});
const meta = { id: 'chatcmpl-0123456789abcdef01234567', created: 1_760_000_000, model: 'demo-model', fingerprint: 'fp_0123456789' };
const frame = JSON.stringify(chunkOf({}, meta));
const at = frame.indexOf('"delta":{}') + '"delta":'.length;
const [head, tail] = [frame.slice(0, at), frame.slice(at + 2)];
const TOKENS = 16;
let sink = 0;

const levers: Lever[] = [
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
      const s = createRequestSignal({ remainingMs: 60_000, clientGone: gone.signal, shutdown });
      s.dispose();
    },
    now: () => {
      const res = new EventEmitter();
      const clientGone: Departure = {
        watch(onGone) {
          const g = (): void => onGone(undefined);
          res.on('close', g);
          return () => res.off('close', g);
        },
      };
      const s = createRequestSignal({ remainingMs: 60_000, clientGone, shutdown });
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
      for (let i = 0; i < TOKENS; i++) sink += `data: ${JSON.stringify(chunkOf({ content: 'tok' }, meta))}\n\n`.length;
    },
    now: () => {
      for (let i = 0; i < TOKENS; i++) sink += `data: ${head}${JSON.stringify({ content: 'tok' })}${tail}\n\n`.length;
    },
  },
  {
    name: 'request logger made although nothing logs',
    old: () => void (sink += logger.child({ req: { method: 'POST', url: '/demo/chat/v1/chat/completions', id: 'req_x' } }) ? 1 : 0),
    now: () => void (sink += 0),
  },
];

function cpuNsPerOp(fn: () => void): number {
  const start = process.cpuUsage();
  for (let i = 0; i < ops; i++) fn();
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / ops;
}

const lines = [
  `CPU ns per operation, median of ${rounds} alternating rounds of ${ops} operations (Node ${process.version})`,
  '',
  '| per request | before | now | now / before |',
  '|---|---:|---:|---:|',
];
for (const lever of levers) {
  cpuNsPerOp(lever.old); // warm-up
  cpuNsPerOp(lever.now);
  const old: number[] = [];
  const now: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      old.push(cpuNsPerOp(lever.old));
      now.push(cpuNsPerOp(lever.now));
    } else {
      now.push(cpuNsPerOp(lever.now));
      old.push(cpuNsPerOp(lever.old));
    }
  }
  const [o, n] = [median(old), median(now)];
  lines.push(`| ${lever.name} | ${fmt(o, 0)} | ${fmt(n, 0)} | ${(n / Math.max(1, o)).toFixed(2)} |`);
}
process.stdout.write(`${lines.join('\n')}\n`);
if (sink < 0) process.stdout.write('');
