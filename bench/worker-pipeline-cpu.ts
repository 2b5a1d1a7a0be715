/**
 * CPU per generation of the inference worker's pipeline without its gRPC server: the openai
 * engine's upstream request, the SSE reading, the service's `Generate` handler and the joining of
 * deltas (`service.impl.generate`, what nice-grpc iterates), for this checkout and another one
 * (`--compare`), both loaded in THIS process and alternated round by round (the order swapped
 * every round), so both sides see the same host load and the same warm JIT. The mock upstream
 * (16 tokens) runs in a child process; its CPU is not counted.
 *
 * Per side it prints the median over the rounds of: CPU µs per generation (`process.cpuUsage`,
 * which includes undici's HTTP work, the same code on both sides), garbage collections and GC
 * milliseconds per 1,000 generations (PerformanceObserver `gc` entries; a count that does not
 * depend on the host's load), and the gRPC messages per generation the handler produced.
 *
 *   node --import tsx bench/worker-pipeline-cpu.ts --compare=<checkout> [--rounds=9] [--count=500] [--concurrency=16]
 *
 * Prints a markdown table; writes nothing.
 */
import os from 'node:os';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { runGenerationLanes } from './lib/generation-lanes.js';
import { loadInferenceServiceModules } from './lib/inference-service-modules.js';
import { ChildProcesses } from './lib/procs.js';
import { fmt, median } from './lib/stats.js';
import { startMock } from './lib/targets.js';

const { values } = parseArgs({
  options: {
    compare: { type: 'string' },
    rounds: { type: 'string', default: '9' },
    count: { type: 'string', default: '500' },
    concurrency: { type: 'string', default: '16' },
  },
});
const root = path.resolve(import.meta.dirname, '..');
if (values.compare === undefined) throw new Error('--compare=<checkout> is required');
const roots = [root, path.resolve(values.compare)];
const rounds = Number(values.rounds);
const count = Number(values.count);
const concurrency = Number(values.concurrency);

interface Message {
  delta?: { tokenCount: number } | undefined;
}
interface Side {
  dir: string;
  generate(requestId: string): AsyncIterable<Message>;
  close(): Promise<void>;
  cpuUs: number[];
  gcs: number[];
  gcMs: number[];
  messages: number[];
}

const load = os.loadavg()[0] ?? Number.NaN;
const children = new ChildProcesses();
const mock = await startMock({ root, children }, { tokens: 16 });
const logger = pino({ level: 'silent' });

async function loadSide(dir: string): Promise<Side> {
  const { mod, createAdmission, createInferenceService, GenerateRequest, Role } = await loadInferenceServiceModules(dir);
  const { createOpenAIEngine } = await mod<{ createOpenAIEngine(o: unknown, d: unknown): { start(): Promise<void>; close(): Promise<void> } }>(
    'services/inference/src/engines/openai/openai-engine.ts',
  );
  const engine = createOpenAIEngine({ baseUrl: mock.url, model: 'mock', contextWindow: 8192, maxConnections: concurrency }, { logger });
  await engine.start();
  const service = createInferenceService({
    engine,
    models: () => [{ id: 'mock', contextWindow: 8192, capabilities: ['chat'] }],
    admission: createAdmission(concurrency, 0),
    workerId: 'bench',
    hardwareClass: 1,
    hardwareDescription: () => 'bench',
    logger,
  });
  return {
    dir,
    generate: (requestId) =>
      service.impl.generate(
        GenerateRequest.fromPartial({ requestId, messages: [{ role: Role.ROLE_USER, content: 'Say hello to the world, please.' }], maxTokens: 16 }),
        // What the handler reads of nice-grpc's call context and the server middleware's.
        { signal: new AbortController().signal, requestId, logger },
      ),
    close: () => engine.close(),
    cpuUs: [],
    gcs: [],
    gcMs: [],
    messages: [],
  };
}

let gcCount = 0;
let gcMs = 0;
const gcObserver = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gcCount += 1;
    gcMs += entry.duration;
  }
});
gcObserver.observe({ entryTypes: ['gc'] });

/** `n` generations, `concurrency` at a time; returns [CPU µs, messages, tokens] per generation. */
async function run(side: Side, n: number): Promise<[number, number, number]> {
  const start = process.cpuUsage();
  const { messages, tokens } = await runGenerationLanes(n, concurrency, (i) => side.generate(`bench-${i}`));
  const used = process.cpuUsage(start);
  return [(used.user + used.system) / n, messages / n, tokens / n];
}

const sides: Side[] = [];
try {
  for (const dir of roots) sides.push(await loadSide(dir));
  // Warm-up: JIT, connections, the heap grown to its working size.
  for (let w = 0; w < 3; w++) for (const side of sides) await run(side, count);
  for (let r = 0; r < rounds; r++) {
    for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
      // Let the previous side's garbage be collected outside this side's round.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const [gc0, gcMs0] = [gcCount, gcMs];
      const [cpu, messages, tokens] = await run(side, count);
      await new Promise((resolve) => setImmediate(resolve)); // deliver this round's gc entries
      if (tokens !== 16) throw new Error(`${side.dir}: ${tokens} tokens per generation, expected 16`);
      side.cpuUs.push(cpu);
      side.messages.push(messages);
      side.gcs.push(((gcCount - gc0) * 1000) / count);
      side.gcMs.push(((gcMs - gcMs0) * 1000) / count);
      process.stderr.write(`round ${r + 1} ${side.dir}: ${fmt(cpu, 1)} µs CPU per generation, ${fmt(messages, 2)} messages\n`);
    }
  }
  const [now, old] = sides as [Side, Side];
  const row = (name: string, pick: (s: Side) => number[], decimals: number): string => {
    const [a, b] = [median(pick(old)), median(pick(now))];
    return `| ${name} | ${fmt(a, decimals)} | ${fmt(b, decimals)} | ${(b / a).toFixed(2)} |`;
  };
  process.stdout.write(
    [
      `Worker pipeline without gRPC (openai engine → Generate handler → joined deltas), ${count} generations × ${rounds} alternating rounds, ${concurrency} at a time, 16 tokens; load average at start ${fmt(load, 2)}, at end ${fmt(os.loadavg()[0] ?? Number.NaN, 2)}`,
      '',
      `| median per generation | ${old.dir} | this checkout | this / other |`,
      '|---|---:|---:|---:|',
      row('CPU µs per generation', (s) => s.cpuUs, 1),
      row('garbage collections per 1,000 generations', (s) => s.gcs, 1),
      row('GC ms per 1,000 generations', (s) => s.gcMs, 1),
      row('gRPC messages per generation', (s) => s.messages, 2),
      '',
      ...sides.map((s) => `${s.dir}: CPU µs per round ${s.cpuUs.map((v) => fmt(v, 0)).join(', ')}`),
      '',
    ].join('\n'),
  );
} finally {
  gcObserver.disconnect();
  for (const side of sides) await side.close();
  await mock.target.stop();
}
