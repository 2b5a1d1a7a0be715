/**
 * System calls per request of the gateway and the inference worker, counted by `strace -c -f`
 * while sequential requests (one at a time, 16-token answers from the mock upstream) pass
 * through a stack of ours started as `npm start` starts it. Counts, unlike times, hardly depend
 * on what else the host is doing, so two checkouts can be compared on a busy machine; every
 * system call on the request path is also a step of its latency.
 *
 *   node --import tsx bench/syscalls-per-request.ts [--root=<checkout>] [--requests=400]
 *
 * --root measures another checkout (built there; its own node_modules). Needs `strace` (Debian
 * package strace) and permission to trace the processes (root, or ptrace_scope 0). Prints, per
 * process and mode (JSON answer, SSE stream), each system call made at least 0.2 times per
 * request; writes nothing.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sendOnce } from './lib/http-load.js';
import { ChildProcesses } from './lib/procs.js';
import { spec, startMock, startOurPlatform, writeBenchTiers, type Target } from './lib/targets.js';
import { openaiEngine } from './gateway/context.js';

const { values } = parseArgs({
  options: {
    root: { type: 'string' },
    requests: { type: 'string', default: '400' },
  },
});
const root = path.resolve(values.root ?? path.join(import.meta.dirname, '..'));
const requests = Number(values.requests);
const host = { root, children: new ChildProcesses() };
const dir = mkdtempSync(path.join(os.tmpdir(), 'xero-syscalls-'));
const targets: Target[] = [];
/** One line of `strace -c`'s table: % time, seconds, usecs/call, calls, [errors], name. */
const ROW = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$/;
try {
  const mock = await startMock(host, { tokens: 16 });
  targets.push(mock.target);
  const ours = await startOurPlatform({
    host,
    dir,
    tiersFile: writeBenchTiers(root, dir),
    inferenceEnv: openaiEngine(mock.url),
    capacity: 256,
  });
  targets.push(ours.target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const lines = [`System calls per request (${requests} sequential requests, 16 tokens), ${root}`, ''];
  for (const stream of [false, true]) {
    const request = spec(ours.target, stream);
    for (let i = 0; i < 200; i++) await sendOnce(request, agent, performance.now(), 5000);
    const traces = [ours.gateway, ours.inference].map((p) => {
      const out = path.join(dir, `${p.name}-${stream ? 'stream' : 'json'}.strace`);
      return { name: p.name, out, child: spawn('strace', ['-c', '-f', '-o', out, '-p', String(p.pid)], { stdio: 'ignore' }) };
    });
    // strace needs a moment to attach to every thread.
    await new Promise((r) => setTimeout(r, 1000));
    for (let i = 0; i < requests; i++) {
      const r = await sendOnce(request, agent, performance.now(), 5000);
      if (r.status !== 200) throw new Error(`request answered ${r.status}`);
    }
    for (const t of traces) t.child.kill('SIGINT');
    await Promise.all(traces.map((t) => new Promise((r) => t.child.once('exit', r))));
    for (const t of traces) {
      const rows = readFileSync(t.out, 'utf8')
        .split('\n')
        .flatMap((line) => {
          const m = ROW.exec(line);
          return m ? [{ name: m[2] ?? '', perRequest: Number(m[1]) / requests }] : [];
        });
      const shown = rows.filter((r) => r.perRequest >= 0.2 && r.name !== 'total');
      const total = rows.find((r) => r.name === 'total')?.perRequest ?? Number.NaN;
      lines.push(`- ${t.name}, ${stream ? 'stream' : 'JSON'}: total ${total.toFixed(1)} (${shown.map((r) => `${r.name} ${r.perRequest.toFixed(1)}`).join(', ')})`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  for (const t of targets.reverse()) await t.stop().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
