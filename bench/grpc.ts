/**
 * The gRPC front door next to the HTTP API, in one run: the same platform (in-process, simulator
 * worker with 16 tokens and no delay, quota and auth cache on), the same request, sequential
 * calls, alternating rounds. Prints latency p50/p99 and process CPU per request for HTTP JSON,
 * HTTP SSE and gRPC (collected stream). Everything shares one process, so CPU per request is the
 * whole platform's (with the test helper's debug-level log capture, so absolute CPU is high);
 * the ratio between transports is what each front door costs.
 *
 *   node --import tsx bench/grpc.ts [--requests 400] [--rounds 3]
 */
import { parseArgs } from 'node:util';
import { createChatClient } from '../client/chat-client.js';
import { createSimulatorEngine } from '../services/inference/src/engines/simulator/simulator-engine.js';
import { SIMULATOR_DEFAULTS, startPlatform } from '../test/helpers/platform.js';
import { unthrottledTiers } from '../test/helpers/tiers.js';
import { median, percentile } from './lib/stats.js';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '400' }, rounds: { type: 'string', default: '3' } } });
const requests = Number(values.requests);
const rounds = Number(values.rounds);

const tiers = unthrottledTiers();
const platform = await startPlatform({
  engines: [createSimulatorEngine({ ...SIMULATOR_DEFAULTS, responseTokens: 16 })],
  gatewayEnv: { TIERS_FILE: tiers, LOG_LEVEL: 'warn' },
  quotaEnv: { TIERS_FILE: tiers },
});
const client = createChatClient({ address: `127.0.0.1:${platform.gateway.grpcPort}`, apiKey: platform.demoKey });
const url = `${platform.baseUrl()}/chat/completions`;
const headers = { authorization: `Bearer ${platform.demoKey}`, 'content-type': 'application/json' };
const body = (stream: boolean) => JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello' }], max_tokens: 16, stream });

const paths: Record<string, () => Promise<void>> = {
  'HTTP JSON': async () => {
    const r = await fetch(url, { method: 'POST', headers, body: body(false) });
    if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
    await r.arrayBuffer();
  },
  'HTTP SSE': async () => {
    const r = await fetch(url, { method: 'POST', headers, body: body(true) });
    if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
    await r.arrayBuffer();
  },
  'gRPC stream': async () => {
    await client.complete({ project: 'demo', endpoint: 'chat', messages: [{ role: 'user', content: 'hello' }], maxCompletionTokens: 16 });
  },
};

const results: Record<string, { p50: number[]; p99: number[]; cpu: number[] }> = {};
try {
  for (const name of Object.keys(paths)) for (let i = 0; i < 50; i++) await paths[name]!(); // warm-up
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of Object.entries(paths)) {
      const latencies: number[] = [];
      const cpu0 = process.cpuUsage();
      for (let i = 0; i < requests; i++) {
        const t0 = performance.now();
        await run();
        latencies.push(performance.now() - t0);
      }
      const cpu = process.cpuUsage(cpu0);
      const r = (results[name] ??= { p50: [], p99: [], cpu: [] });
      r.p50.push(percentile(latencies, 50));
      r.p99.push(percentile(latencies, 99));
      r.cpu.push((cpu.user + cpu.system) / 1000 / requests);
    }
  }
  const http = results['HTTP JSON']!;
  console.log(`\n${requests} sequential requests × ${rounds} rounds, medians of rounds (whole platform in one process)\n`);
  console.log('| path | p50 ms | p99 ms | CPU ms/request | CPU vs HTTP JSON |');
  console.log('|---|---:|---:|---:|---:|');
  for (const [name, r] of Object.entries(results)) {
    const cpu = median(r.cpu);
    console.log(`| ${name} | ${median(r.p50).toFixed(2)} | ${median(r.p99).toFixed(2)} | ${cpu.toFixed(3)} | ${(cpu / median(http.cpu)).toFixed(2)}× |`);
  }
} finally {
  client.close();
  await platform.stop();
}
