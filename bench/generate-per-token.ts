/**
 * CPU per token of the inference service's `Generate` handler when the engine has one token per
 * event-loop turn (the way llama.cpp or a paced upstream produces them): every token then passes
 * the handler alone, and nothing is joined. The engine is scripted (a token after every second
 * `setImmediate`), so the figure is the handler's own cost plus those wake-ups, the same on both
 * sides. This checkout and another one (`--compare`, a checkout with node_modules) are loaded in
 * THIS process and alternated round by round, so both see the same host load and warm JIT.
 *
 *   node --import tsx bench/generate-per-token.ts --compare=<checkout> [--rounds=9] [--tokens=100000]
 *
 * Prints the median CPU µs per token per side and their ratio; writes nothing.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadInferenceServiceModules } from './lib/inference-service-modules.js';
import { fmt, median, ratio } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    compare: { type: 'string' },
    rounds: { type: 'string', default: '9' },
    tokens: { type: 'string', default: '100000' },
  },
});
if (values.compare === undefined) throw new Error('--compare=<checkout> is required');
const root = path.resolve(import.meta.dirname, '..');
const roots = [root, path.resolve(values.compare)];
const rounds = Number(values.rounds);
const tokens = Number(values.tokens);
const logger = pino({ level: 'silent' });

/** The scripted engine's events alone, without the handler: what both sides' figures include. */
async function engineAlone(): Promise<number> {
  const before = process.cpuUsage();
  for await (const _ of scriptedEvents()) void _;
  const used = process.cpuUsage(before);
  return (used.user + used.system) / tokens;
}

async function* scriptedEvents() {
  for (let i = 0; i < tokens; i++) {
    // Two check phases: the handler's end-of-turn check (scheduled after this token's first
    // wake-up) fires before the token is there, so each token goes out alone.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    yield { type: 'delta', text: 'x', tokenCount: 1 };
  }
  yield { type: 'final', finishReason: 'stop', usage: { promptTokens: 1, completionTokens: tokens } };
}

async function loadSide(dir: string): Promise<() => Promise<number>> {
  const { createAdmission, createInferenceService, GenerateRequest, Role } = await loadInferenceServiceModules(dir);
  const engine = {
    start: async () => undefined,
    info: () => ({ engine: 'scripted', model: 'scripted', fingerprint: 'fp', contextWindow: 4096, backend: 'scripted' }),
    unsupported: new Set(),
    ready: () => true,
    countPromptTokens: async () => 1,
    generate: () => scriptedEvents(),
    embed: () => Promise.reject(new Error('not used')),
    close: async () => undefined,
  };
  const service = createInferenceService({
    engine,
    models: () => [],
    admission: createAdmission(1, 0),
    workerId: 'bench',
    hardwareClass: 1,
    hardwareDescription: () => 'scripted',
    logger,
  });
  const request = GenerateRequest.fromPartial({ requestId: 'r', messages: [{ role: Role.ROLE_USER, content: 'Hi', name: '' }] });
  return async () => {
    const context = { signal: new AbortController().signal, requestId: 'r', logger };
    const before = process.cpuUsage();
    let deltas = 0;
    for await (const m of service.impl.generate(request, context)) if (m.delta !== undefined) deltas++;
    const used = process.cpuUsage(before);
    if (deltas !== tokens) throw new Error(`${dir}: ${deltas} delta messages for ${tokens} tokens, one per turn expected`);
    return (used.user + used.system) / tokens;
  };
}

const sides = [...(await Promise.all(roots.map(loadSide))), engineAlone];
const perToken: number[][] = sides.map(() => []);
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < sides.length; i++) {
    const k = (i + r) % sides.length;
    perToken[k]?.push(await (sides[k] as () => Promise<number>)());
  }
}
const [mine = [], theirs = [], alone = []] = perToken;
console.log(`Generate handler, one token per event-loop turn, ${tokens} tokens × ${rounds} alternating rounds\n`);
console.log(`| median CPU µs per token | ${path.basename(roots[1] ?? '')} | this checkout | this / other |`);
console.log('|---|---:|---:|---:|');
console.log(`| Generate handler + two setImmediate | ${fmt(median(theirs), 3)} | ${fmt(median(mine), 3)} | ${ratio(median(mine), median(theirs))} |`);
console.log(`| scripted engine alone (in both figures) | ${fmt(median(alone), 3)} | ${fmt(median(alone), 3)} | |`);
console.log(`| handler's own (the difference) | ${fmt(median(theirs) - median(alone), 3)} | ${fmt(median(mine) - median(alone), 3)} | ${ratio(median(mine) - median(alone), median(theirs) - median(alone))} |`);
console.log(`\nthis checkout per round: ${mine.map((v) => fmt(v, 2)).join(', ')}`);
console.log(`other per round: ${theirs.map((v) => fmt(v, 2)).join(', ')}`);
