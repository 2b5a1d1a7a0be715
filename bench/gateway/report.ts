/**
 * The markdown report of `npm run bench` (what bench/run.ts prints and writes to
 * docs/BENCHMARKS.md): machine, what is compared, method, the tables, failures and the profile.
 */
import os from 'node:os';
import path from 'node:path';
import { AUTOCANNON_VERSION } from '../lib/autocannon.js';
import { formatProfileMarkdown } from '../lib/cpuprofile.js';
import { fmt } from '../lib/stats.js';
import { BODY, portkeyVersion } from '../lib/targets.js';
import type { GatewayFlags } from './flags.js';
import { PROFILE_WATCH } from './profile.js';
import type { ProfileOutcome, RunResults } from './results.js';
import { cpuTable, memoryTable, perRoundTable, resultsTable } from './tables.js';

function machine(root: string, loadAverages: readonly number[]): string {
  const cpus = os.cpus();
  return [
    `- CPU: ${cpus[0]?.model.trim() ?? 'unknown'} — ${cpus.length} logical cores (available parallelism ${os.availableParallelism()})`,
    `- Memory: ${fmt(os.totalmem() / 1024 ** 3, 1)} GiB; OS: ${os.type()} ${os.release()} (${os.arch()})`,
    `- Node ${process.version}; autocannon ${AUTOCANNON_VERSION}; @portkey-ai/gateway ${portkeyVersion(root)}`,
    `- Everything on one host over 127.0.0.1: load generator, mock upstream, and every gateway/service process share the same cores.`,
    `- 1-minute load average at start / end of the run: ${loadAverages.map((l) => l.toFixed(2)).join(' / ')} (anything above ~0 before the run is other work on the host; figures are noisier then).`,
  ].join('\n');
}

function comparedAndMethod(flags: GatewayFlags): string[] {
  const { ttft } = flags;
  return [
    '## What is compared',
    '',
    'Three targets in front of the **same mock OpenAI server** (`test/fixtures/mock-openai-server.ts`, 16 completion',
    'tokens, no artificial delays, its own process), same load, alternating target order within every',
    `measurement, ${flags.rounds} rounds; every figure is the **median of the ${flags.rounds} rounds**.`,
    '',
    '| target | what it does per request |',
    '|---|---|',
    '| mock direct | nothing: the client talks to the upstream (baseline) |',
    '| **ours** | gateway (express, request id + access log, Prometheus HTTP metrics, JSON parse + zod validation) → **auth**: the key is checked against the gateway\'s auth cache (≤ 5 s TTL; a gRPC `Authenticate` to the auth service on a miss, i.e. about once per 5 s for this single key) → **quota** `Reserve` (gRPC unary, every request) → pick a worker → **inference worker** `Generate` (gRPC server stream; admission, openai engine) → **upstream HTTP** to the mock (SSE parsed and re-framed as proto events) → gateway re-encodes OpenAI JSON/SSE → **quota** `Settle` (gRPC unary, after the response). Circuit breaker around every gRPC call. 4 processes, each started as `npm start` starts it (`node dist/...js`, compiled JavaScript); per request 3 gRPC calls (settlements are batched, so fewer in practice) + 1 upstream HTTP request. |',
    '| Portkey | `@portkey-ai/gateway` Node server (hono): header-configured provider (`x-portkey-provider: openai`, `x-portkey-custom-host`), forwards to the upstream with fetch and relays the response/stream. Proxy only: no auth, no quota, no extra hop. |',
    '',
    `Body: \`${JSON.stringify(BODY)}\` (streaming adds \`"stream": true, "stream_options": {"include_usage": true}\`).`,
    'The demo key\'s tier gets very high numeric limits (`TIERS_FILE`) so the quota service counts every request',
    'but never throttles. All processes log at `warn`.',
    '',
    '## Method',
    '',
    `- **Saturation**: autocannon (programmatic), ${flags.connections} connections, closed loop, ${flags.satSeconds} s; throughput = 2xx/s; latency is autocannon's (1 ms resolution).`,
    `- **Fixed rate** (${flags.rates.join(' and ')} req/s, ${flags.rateSeconds} s each): an open-loop client (\`bench/lib/http-load.ts\`) sends requests at evenly spaced times on keep-alive connections`,
    '  and measures latency from each request\'s *scheduled* send time (µs resolution; client-side queueing when a target falls behind is counted).',
    '  autocannon\'s `overallRate` was not used for these figures: it releases each connection\'s share of the rate as a burst at the start of every second',
    '  and, with a rate set, back-fills latencies with a 1 ms expected interval (coordinated-omission correction), which distorts p50/p99 at these latencies.',
    `- **TTFT**: time to the first \`data:\` byte of a stream: ${ttft.sequential} sequential requests on one keep-alive connection, then ${ttft.concurrent} at concurrency ${ttft.concurrency}.`,
    '  The fixed-rate stream runs also report TTFT under load.',
    '- **Percentiles** of our own clients (fixed rate, TTFT) are nearest-rank (`bench/lib/stats.ts`): p99 is a measured request, never an interpolation.',
    '- **Added latency / TTFT overhead** = target median − mock-direct median of the same metric (medians of the per-round percentiles).',
    '- Before each measurement of ours the runner waits until the gateway\'s `/healthz` shows the worker connected, its breaker not open and',
    '  nothing in flight, plus one worker status interval (1 s), so one measurement\'s backlog or broken connection does not spill into the next.',
    '- **Proxy CPU per request**: user+sys CPU time (`/proc/<pid>/stat`) of the proxy processes during the saturation run ÷ 2xx responses (ours: gateway + auth + quota + worker; Portkey: its process). The mock and the load generator are not counted.',
    `- **Memory**: fresh processes in front of a slow mock (first token at once, then a 60 s pause); after 50 warm-up streams, RSS (\`VmRSS\`) of the front process idle, then with ${flags.idleStreams} open streams (each past its first \`data:\` byte, one connection each), then after closing them.`,
    '',
  ];
}

function workerLostNote(n: number): string[] {
  return [
    `**Note — lost worker connections (why ours has failures).** During this run our gateway lost its HTTP/2 connection to the`,
    `inference worker ${n} time(s). Each time the worker closed the connection with GOAWAY code 2 (INTERNAL_ERROR); the`,
    'gateway then answers 503 `no_healthy_worker` until it has reconnected, and streams in flight end with 500 `internal_error`.',
    'Observed cause: once it has the final event the gateway cancels the `Generate` call (`relay()` → `rest.return()`, then',
    '`release()` aborts the attempt) without waiting for the call\'s status, so every request whose trailers have not arrived yet',
    'ends with an RST_STREAM(CANCEL) from the gateway (56 of 400 successful requests at 50 req/s in a `NODE_DEBUG=http2` check on',
    'the worker; more under load). Node\'s HTTP/2 server (nghttp2 ≥ 1.57, CVE-2023-44487 "rapid reset" mitigation) accepts 1000',
    'incoming resets as a burst plus 33/s, then sends GOAWAY and tears the connection down. The figures for ours therefore include',
    'these failures and the reconnects; they are not the cost of the extra hops alone.',
    '',
  ];
}

function failures(results: RunResults): string[] {
  const out = ['### Failures', ''];
  for (const c of results.crashes) {
    out.push(`- **our ${c.process} process died** (exit ${c.exit}) during or right after ${c.during}; the stack was restarted and the run continued. Its last output:`, '', '```', c.tail, '```', '');
  }
  if (results.workerLost > 0) {
    out.push(`- our gateway logged "worker status stream lost" ${results.workerLost} time(s) during the main phase (its HTTP/2 connection to the worker was closed; see the notes).`);
  }
  for (const [what, f] of results.failureLog) out.push(`- ${what}: ${f.n} failed — first: \`${(f.error ?? '').replace(/`/g, "'").slice(0, 240)}\``);
  out.push('');
  return out;
}

function profileSection(root: string, profile: ProfileOutcome): string[] {
  const out = [
    '## CPU profiles (gateway, inference worker, quota)',
    '',
    `\`node --cpu-prof\` on each of these processes (compiled JavaScript, as \`npm start\` runs them), under load: ${profile.load}.`,
    `Only samples ${(profile.window[0] / 1000).toFixed(1)}–${(profile.window[1] / 1000).toFixed(1)} s after spawn are counted, i.e. the measured load without startup and warm-up;`,
    `analyse a file again with \`FROM_MS=${profile.window[0]} TO_MS=${profile.window[1]} node --import tsx bench/lib/cpuprofile.ts <file>\` (files are gitignored).`,
    '',
  ];
  for (const p of profile.processes) {
    out.push(`### ${p.name}`, '', `File: \`${path.relative(root, p.file)}\``, '', formatProfileMarkdown(p.summary, 10, PROFILE_WATCH), '');
  }
  return out;
}

export function report(root: string, flags: GatewayFlags, results: RunResults): string {
  const date = new Date().toISOString().replace('T', ' ').slice(0, 16);
  const out: string[] = ['# Benchmarks', '', `Generated ${date} UTC by:`, '', '```bash', flags.command, '```', ''];
  out.push('## Machine', '', machine(root, results.loadAverages), '');
  if (flags.main) {
    out.push(...comparedAndMethod(flags), '## Results', '');
    if (results.workerLost > 0) out.push(...workerLostNote(results.workerLost));
    out.push(
      resultsTable(flags, results),
      '',
      '⚠ marks a fixed-rate run where fewer than 95% of the offered requests per second completed with a 2xx (overload, failures, or both;',
      'see Failures). Latencies are of the 2xx responses only and include client-side queueing when the target fell behind.',
      '',
      '### Per-round values (the spread behind the medians)',
      '',
      perRoundTable(flags, results),
      '',
      '### Where our CPU goes (saturation, ms of CPU per request)',
      '',
      cpuTable(results),
      '',
    );
    if (results.memory.length > 0) out.push('### Memory detail', '', memoryTable(flags.idleStreams, results.memory), '');
    if (results.failureLog.size > 0 || results.workerLost > 0 || results.crashes.length > 0) out.push(...failures(results));
  }
  if (results.phaseErrors.length > 0) {
    out.push('## Phases that failed', '', ...results.phaseErrors.map((e) => `- ${e.replace(/\n/g, ' ').slice(0, 1500)}`), '');
  }
  if (results.profile) out.push(...profileSection(root, results.profile));
  return out.join('\n');
}
