/**
 * What the router's feedback costs the gateway per request and per token (the relay in
 * gateway/src/chat/generation.ts calls it): the per-token progress report against the bare token
 * counter the relay kept before, and one request's whole routing cycle (choose among four workers
 * with requests in flight, first token, TOKENS tokens, end). In one process: alternating batches,
 * CPU time (process.cpuUsage) per operation, median of the rounds and the ratio. A
 * microbenchmark: it says what the lever costs in isolation.
 *
 *   node --import tsx bench/routing-hotpath.ts [--ops=20000] [--rounds=7]
 */
import { parseArgs } from 'node:util';
import type { Candidate, Dispatch, RoutingHint } from '../gateway/src/fleet/scoring/candidate.js';
import { seededRandom } from '../gateway/src/fleet/scoring/random.js';
import { createRouter } from '../gateway/src/fleet/scoring/router.js';
import { DEFAULT_ROUTING } from '../gateway/src/fleet/scoring/settings.js';
import { abRow, abTableHead, cpuNsPerOp, type Lever } from './lib/ab-levers.js';

const { values } = parseArgs({ options: { ops: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '7' } } });
const ops = Number(values.ops);
const rounds = Number(values.rounds);
const TOKENS = 16;

const router = createRouter({ settings: DEFAULT_ROUTING, random: seededRandom(1), now: () => performance.now() });
const workers = [0, 1, 2, 3].map((k) => ({ k }));
const hint: RoutingHint = { prefixBlocks: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'], promptTokens: 1400, project: undefined };
const candidates: Candidate[] = workers.map((key, k) => ({ key, address: `w${k}`, inFlight: 2, capacity: 2, reportedTtftMs: undefined, owner: undefined }));
// Two requests in flight on every worker, decoding (the scorer reads their progress on every choice).
for (let i = 0; i < 8; i++) {
  const c = router.choose(candidates, hint);
  router.firstToken(candidates[c.index]!.key, c.dispatch);
  router.progress(c.dispatch, 4);
}
const counter = { tokens: 0 };
const dispatch: Dispatch = router.choose(candidates, hint).dispatch;
let sink = 0;

const levers: Lever[] = [
  {
    name: `${TOKENS} tokens relayed: bare counter (before) vs router.progress (now)`,
    old: () => {
      for (let i = 0; i < TOKENS; i++) counter.tokens += 1;
    },
    now: () => {
      for (let i = 0; i < TOKENS; i++) router.progress(dispatch, 1);
    },
  },
  {
    name: `one request: choose among 4 workers (8 in flight), first token, ${TOKENS} tokens, end — without (before) vs with the per-token reports (now)`,
    old: () => {
      const c = router.choose(candidates, hint);
      const key = candidates[c.index]!.key;
      router.firstToken(key, c.dispatch);
      for (let i = 0; i < TOKENS; i++) counter.tokens += 1;
      router.ended(key, c.dispatch, true);
    },
    now: () => {
      const c = router.choose(candidates, hint);
      const key = candidates[c.index]!.key;
      router.firstToken(key, c.dispatch);
      for (let i = 0; i < TOKENS; i++) router.progress(c.dispatch, 1);
      router.ended(key, c.dispatch, true);
    },
  },
];

const lines = abTableHead(rounds, ops);
for (const lever of levers) lines.push(await abRow(lever.name, () => cpuNsPerOp(lever.old, ops), () => cpuNsPerOp(lever.now, ops), rounds));
sink += counter.tokens;
process.stdout.write(`${lines.join('\n')}\n`);
if (sink < 0) process.stdout.write('');
