/**
 * The parse of a chat completion request body, the way every body went before (the zod schema)
 * and the way it goes now (`parseChatCompletionRequest`: the common shape checked by hand, the
 * schema for the rest), in one process: alternating rounds, CPU ns per body, medians and the
 * ratio now/before. Each body is a fresh JSON.parse result made outside the timed loop, as
 * express.json hands it over.
 *
 *   node --import tsx bench/chat-request-parse.ts [--ops=20000] [--rounds=9] [--compiled]
 *
 * --compiled measures dist/ (`node scripts/build.mjs` first), the code the gateway runs: under
 * tsx, closures made per call are named at run time (esbuild's keepNames), which adds to both
 * columns.
 */
import { parseArgs } from 'node:util';
import { abRow, abTableHead, cpuNsPerOp } from './lib/ab-levers.js';
import { BODY, STREAM_BODY } from './lib/targets.js';

const { values } = parseArgs({
  options: { ops: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '9' }, compiled: { type: 'boolean', default: false } },
});
const ops = Number(values.ops);
const rounds = Number(values.rounds);
const schema = (await import(
  values.compiled ? '../dist/gateway/src/openai/schema.js' : '../gateway/src/openai/schema.js'
)) as typeof import('../gateway/src/openai/schema.js');

const bodies: Array<{ name: string; json: string }> = [
  { name: 'the benchmark body (one user message, max_tokens)', json: JSON.stringify(BODY) },
  { name: 'the benchmark streaming body (stream_options)', json: JSON.stringify(STREAM_BODY) },
  {
    name: 'four messages, temperature, stop, user',
    json: JSON.stringify({
      model: 'demo',
      messages: [
        { role: 'system', content: 'You are a helpful assistant.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello! How can I help?' },
        { role: 'user', content: 'Say hello in five words please.' },
      ],
      temperature: 0.7,
      stop: ['\n\n'],
      user: 'user-1234',
    }),
  },
  {
    name: 'with a tool (not the common shape: the schema either way)',
    json: JSON.stringify({
      model: 'demo',
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [{ type: 'function', function: { name: 'weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
    }),
  },
];

/** CPU ns per parse of `ops` fresh copies of `json`. */
function measure(parse: (body: unknown) => unknown, json: string): number {
  const copies = Array.from({ length: ops }, () => JSON.parse(json) as unknown);
  let i = 0;
  return cpuNsPerOp(() => void parse(copies[i++]), ops);
}

const lines = [values.compiled ? 'dist/ (compiled)' : 'sources under tsx', '', ...abTableHead(rounds, ops)];
for (const { name, json } of bodies) {
  lines.push(
    await abRow(
      name,
      () => measure(schema.parseChatCompletionRequestBySchema, json),
      () => measure(schema.parseChatCompletionRequest, json),
      rounds,
    ),
  );
}
process.stdout.write(`${lines.join('\n')}\n`);
