/**
 * Typed access to autocannon's programmatic API (the package ships no types; we declare the
 * subset we use) and a closed-loop "saturation" run: N connections, each sending its next
 * request as soon as the previous response ended.
 */
import { createRequire } from 'node:module';
import type { RequestSpec } from './http-load.js';

interface AutocannonOptions {
  url: string;
  method: 'POST';
  headers: Record<string, string>;
  body: string;
  connections: number;
  duration: number;
  pipelining: number;
  timeout: number;
}

interface Histogram {
  average: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  latency: Histogram;
  requests: Histogram & { sent: number; total: number };
  statusCodeStats: Record<string, { count: number }>;
}

type Autocannon = ((opts: AutocannonOptions) => Promise<AutocannonResult>) & { version?: string };

const require = createRequire(import.meta.url);
const autocannon = require('autocannon') as Autocannon;
export const AUTOCANNON_VERSION = (require('autocannon/package.json') as { version: string }).version;

export interface SaturationResult {
  /** 2xx responses per second. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  ok: number;
  failed: number;
  /** e.g. "HTTP 503 ×12, HTTP 500 ×3, 2 socket errors" when something failed. */
  failure?: string;
}

export async function saturate(spec: RequestSpec, connections: number, seconds: number): Promise<SaturationResult> {
  const r = await autocannon({
    url: spec.url,
    method: 'POST',
    headers: { ...spec.headers, 'content-type': 'application/json' },
    body: spec.body,
    connections,
    duration: seconds,
    pipelining: 1,
    timeout: 10,
  });
  const ok = r['2xx'];
  const out: SaturationResult = {
    rps: ok / (r.duration > 0 ? r.duration : seconds),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    ok,
    failed: r.non2xx + r.errors + r.timeouts,
  };
  if (out.failed > 0) {
    const parts = Object.entries(r.statusCodeStats ?? {})
      .filter(([code]) => !code.startsWith('2'))
      .map(([code, s]) => `HTTP ${code} ×${s.count}`);
    if (r.errors > 0) parts.push(`${r.errors} socket errors`);
    if (r.timeouts > 0) parts.push(`${r.timeouts} timeouts`);
    out.failure = parts.join(', ');
  }
  return out;
}
