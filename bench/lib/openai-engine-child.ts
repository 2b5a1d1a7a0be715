/**
 * Child-process entry of bench/openai-engine-cpu.ts: the openai engine of one checkout (ENGINE_ROOT)
 * in front of the mock upstream (MOCK_URL), alone in its process so `process.cpuUsage()` is its
 * CPU. Runs WARMUP then COUNT streamed generations, CONCURRENCY at a time, and prints one line
 * `{"msPerRequest":…,"tokens":…}` (CPU ms per generation of the measured part).
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';

const root = process.env['ENGINE_ROOT'] ?? '';
const url = process.env['MOCK_URL'] ?? '';
const count = Number(process.env['COUNT'] ?? '2000');
const warmup = Number(process.env['WARMUP'] ?? '500');
const concurrency = Number(process.env['CONCURRENCY'] ?? '16');

interface EngineModule {
  createOpenAIEngine(opts: Record<string, unknown>, deps: { logger: unknown }): {
    start(): Promise<void>;
    close(): Promise<void>;
    generate(params: unknown, signal: AbortSignal): AsyncIterable<{ type: string; tokenCount?: number }>;
  };
}
const mod = (await import(pathToFileURL(path.join(root, 'services/inference/src/engines/openai/openai-engine.ts')).href)) as EngineModule;
const engine = mod.createOpenAIEngine({ baseUrl: url, model: 'mock', contextWindow: 8192, maxConnections: concurrency }, { logger: pino({ level: 'silent' }) });
await engine.start();

const messages = [{ role: 'user', content: 'Say hello to the world, please.' }];
let tokens = 0;
async function run(n: number): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < n) {
      next += 1;
      for await (const ev of engine.generate({ requestId: `req-${next}`, messages, stop: [], maxTokens: 16 }, new AbortController().signal)) {
        if (ev.type === 'delta') tokens += ev.tokenCount ?? 0;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
}

await run(warmup);
tokens = 0;
const before = process.cpuUsage();
await run(count);
const used = process.cpuUsage(before);
await engine.close();
process.stdout.write(`${JSON.stringify({ msPerRequest: (used.user + used.system) / 1000 / count, tokens: tokens / count })}\n`);
process.exit(0);
