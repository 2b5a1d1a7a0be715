/**
 * Custom HTTP clients for what autocannon does not measure well:
 *  - pacedLoad: open-loop load at a fixed request rate with evenly spaced send times; latency is
 *    measured from each request's *scheduled* send time (so client-side queueing when the target
 *    falls behind counts — no coordinated omission), with sub-millisecond resolution. For SSE it
 *    also records time to the first `data:` byte.
 *  - ttftProbe: time to the first `data:` byte of streaming requests, sequential and concurrent.
 *  - holdStreams: opens N streaming requests, waits for each one's first `data:` byte and keeps
 *    them open until release().
 * Every loop is bounded in count and time.
 */
import { setMaxListeners } from 'node:events';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RequestSpec {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface OneResult {
  status: number;
  /** Scheduled (or actual) start → end of the response body, ms. */
  totalMs: number;
  /** Start → first `data:` byte of the body (streams) or first body byte, ms. */
  firstDataMs: number | undefined;
  error?: string;
}

function requestOptions(spec: RequestSpec, agent: http.Agent, signal?: AbortSignal): http.RequestOptions {
  const u = new URL(spec.url);
  return {
    ...(signal ? { signal } : {}),
    host: u.hostname,
    port: u.port,
    path: u.pathname + u.search,
    method: 'POST',
    agent,
    headers: { ...spec.headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(spec.body)) },
  };
}

/** One request; resolves (never rejects) once the body ended, failed or timed out. */
export function sendOnce(spec: RequestSpec, agent: http.Agent, startedAt: number, timeoutMs: number, signal?: AbortSignal): Promise<OneResult> {
  return new Promise<OneResult>((resolve) => {
    let settled = false;
    const finish = (r: OneResult): void => {
      if (settled) return;
      settled = true;
      resolve(r);
    };
    const req = http.request(requestOptions(spec, agent, signal), (res) => {
      let first: number | undefined;
      let carry = '';
      const failed = (res.statusCode ?? 0) >= 300;
      let errorBody = '';
      res.on('data', (chunk: Buffer) => {
        if (failed && errorBody.length < 300) errorBody += chunk.toString('utf8');
        if (first !== undefined) return;
        const text = carry + chunk.toString('latin1');
        if (text.includes('data:') || !String(res.headers['content-type'] ?? '').includes('event-stream')) first = performance.now();
        else carry = text.slice(-8);
      });
      res.on('end', () => {
        const now = performance.now();
        const r: OneResult = { status: res.statusCode ?? 0, totalMs: now - startedAt, firstDataMs: first === undefined ? undefined : first - startedAt };
        if (failed) r.error = `HTTP ${res.statusCode}: ${errorBody.slice(0, 300)}`;
        finish(r);
      });
      res.on('error', (err) => finish({ status: 0, totalMs: performance.now() - startedAt, firstDataMs: undefined, error: err.message }));
      res.on('close', () => {
        if (!res.complete) finish({ status: 0, totalMs: performance.now() - startedAt, firstDataMs: undefined, error: 'response closed early' });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', (err) => {
      const why = signal?.aborted && signal.reason instanceof Error ? signal.reason.message : err.message;
      finish({ status: 0, totalMs: performance.now() - startedAt, firstDataMs: undefined, error: why });
    });
    req.end(spec.body);
  });
}

export interface PacedResult {
  rate: number;
  sent: number;
  ok: number;
  non2xx: number;
  errors: number;
  /** Successful requests per second over the run (start → last completion). */
  achievedRps: number;
  latenciesMs: number[];
  firstDataMs: number[];
  firstError?: string;
}

/**
 * Sends `rate` requests per second for `durationMs` on keep-alive connections (at most
 * maxSockets concurrent; later requests wait in the client queue and that wait is counted).
 */
export async function pacedLoad(
  spec: RequestSpec,
  options: { rate: number; durationMs: number; maxSockets?: number; timeoutMs?: number; drainMs?: number },
): Promise<PacedResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const total = Math.max(1, Math.round((options.rate * options.durationMs) / 1000));
  const interval = 1000 / options.rate;
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 256 });
  const pending: Array<Promise<OneResult>> = [];
  const abort = new AbortController();
  setMaxListeners(total + 16, abort.signal); // one listener per request by design
  const start = performance.now() + 5;
  let next = 0;
  try {
    // Scheduler: every tick sends all requests whose time has come (bounded by `total`).
    while (next < total) {
      const now = performance.now();
      while (next < total && start + next * interval <= now) {
        pending.push(sendOnce(spec, agent, start + next * interval, timeoutMs, abort.signal));
        next += 1;
      }
      if (next >= total) break;
      const wait = start + next * interval - performance.now();
      await sleep(Math.max(0, Math.floor(wait)));
      if (performance.now() - start > options.durationMs + 5_000) break; // scheduler can't keep up: stop sending
    }
    // A target that fell behind gets drainMs to finish its backlog; what is still open then is
    // aborted and counted as failed (bounds the run; such runs are flagged as overloaded anyway).
    const deadline = sleep(options.drainMs ?? 3_000).then(() => 'deadline' as const);
    const all = Promise.all(pending);
    if ((await Promise.race([all, deadline])) === 'deadline') {
      abort.abort(new Error(`not finished ${options.drainMs ?? 3_000} ms after the schedule ended`));
      agent.destroy();
    }
    const results = await all;
    const ended = Math.max(...results.map((r, i) => start + i * interval + r.totalMs));
    const okResults = results.filter((r) => r.status >= 200 && r.status < 300);
    const firstError = results.find((r) => r.error !== undefined || r.status >= 300);
    const out: PacedResult = {
      rate: options.rate,
      sent: results.length,
      ok: okResults.length,
      non2xx: results.filter((r) => r.status >= 300).length,
      errors: results.filter((r) => r.status === 0).length,
      achievedRps: okResults.length / ((ended - start) / 1000),
      latenciesMs: okResults.map((r) => r.totalMs),
      firstDataMs: okResults.flatMap((r) => (r.firstDataMs === undefined ? [] : [r.firstDataMs])),
    };
    if (firstError) out.firstError = firstError.error ?? `HTTP ${firstError.status}`;
    return out;
  } finally {
    agent.destroy();
  }
}

export interface TtftResult {
  sequentialMs: number[];
  concurrentMs: number[];
  failures: number;
  firstError?: string;
}

/**
 * Time to first `data:` byte: `sequential` requests one after another on one keep-alive
 * connection, then `concurrent` requests with `concurrency` in flight. Bounded by budgetMs.
 */
export async function ttftProbe(
  spec: RequestSpec,
  options: { sequential: number; concurrent: number; concurrency: number; budgetMs?: number },
): Promise<TtftResult> {
  const until = Date.now() + (options.budgetMs ?? 30_000);
  const out: TtftResult = { sequentialMs: [], concurrentMs: [], failures: 0 };
  const record = (r: OneResult, into: number[]): void => {
    if (r.status === 200 && r.firstDataMs !== undefined) into.push(r.firstDataMs);
    else {
      out.failures += 1;
      out.firstError ??= r.error ?? `HTTP ${r.status}, no data`;
    }
  };
  const seqAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < options.sequential && Date.now() < until; i++) {
      record(await sendOnce(spec, seqAgent, performance.now(), 10_000), out.sequentialMs);
    }
  } finally {
    seqAgent.destroy();
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  try {
    let issued = 0;
    const lane = async (): Promise<void> => {
      while (issued < options.concurrent && Date.now() < until) {
        issued += 1;
        record(await sendOnce(spec, agent, performance.now(), 10_000), out.concurrentMs);
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, lane));
  } finally {
    agent.destroy();
  }
  return out;
}

export interface HeldStreams {
  held: number;
  failed: number;
  firstError: string | undefined;
  release(): void;
}

/**
 * Opens n streaming requests (batch at a time), each on its own connection, and keeps those that
 * produced their first `data:` byte open until release().
 */
export async function holdStreams(
  spec: RequestSpec,
  n: number,
  options: { batch?: number; timeoutMs?: number; budgetMs?: number } = {},
): Promise<HeldStreams> {
  const batch = options.batch ?? 100;
  const timeoutMs = options.timeoutMs ?? 15_000;
  const until = Date.now() + (options.budgetMs ?? 60_000);
  const agent = new http.Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  const open: http.ClientRequest[] = [];
  let held = 0;
  let failed = 0;
  let firstError: string | undefined;
  const openOne = (): Promise<void> =>
    new Promise<void>((resolve) => {
      let done = false;
      const fail = (why: string): void => {
        if (done) return;
        done = true;
        failed += 1;
        firstError ??= why;
        req.destroy();
        resolve();
      };
      const req = http.request(requestOptions(spec, agent), (res) => {
        if (res.statusCode !== 200) {
          let body = '';
          res.on('data', (chunk: Buffer) => {
            if (body.length < 300) body += chunk.toString('utf8');
          });
          res.on('end', () => fail(`HTTP ${res.statusCode}: ${body.slice(0, 300)}`));
          res.on('error', () => fail(`HTTP ${res.statusCode}`));
          return;
        }
        let carry = '';
        res.on('data', (chunk: Buffer) => {
          if (done) return;
          const text = carry + chunk.toString('latin1');
          if (text.includes('data:')) {
            done = true;
            held += 1;
            req.setTimeout(0);
            resolve();
          } else carry = text.slice(-8);
        });
        res.on('error', () => fail('response error'));
        res.on('end', () => fail('stream ended before release'));
      });
      open.push(req);
      req.setTimeout(timeoutMs, () => fail('timeout before first data'));
      req.on('error', (err) => fail(err.message));
      req.end(spec.body);
    });
  for (let started = 0; started < n && Date.now() < until; started += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, n - started) }, openOne));
  }
  return {
    held,
    failed,
    firstError,
    release() {
      for (const req of open) req.destroy();
      agent.destroy();
    },
  };
}
