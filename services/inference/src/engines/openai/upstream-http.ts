/**
 * The openai engine's HTTP transport: undici's HTTP/1.1 client (a Pool of keep-alive connections
 * per engine), bodies as Node streams. It replaces node:http's Agent and ClientRequest, which cost
 * the worker more CPU per generation (docs/BENCHMARKS.md, "Sixth sitting"), and before them the
 * global fetch, whose WHATWG Request/Response/ReadableStream layers cost more than the rest of a
 * generation (docs/decisions.md has the figures).
 *
 * - Connections: up to `maxSockets` to the upstream (the worker's capacity: one per running
 *   generation), one request at a time each (no pipelining), reused while idle; an idle
 *   connection is closed before the upstream's own keep-alive timeout (its `Keep-Alive: timeout=`
 *   hint less 1 s, at most {@link IDLE_TIMEOUT_MS}), so a request is not sent on a connection the
 *   upstream is closing. undici takes a finished connection back one event-loop turn after its
 *   response ended, so a request sent in that same turn may open another (within `maxSockets`).
 * - No timeouts of the client's own: the caller's stall timer (upstream-call.ts) decides.
 * - TLS: Node's default trust store (`NODE_EXTRA_CA_CERTS` included), like fetch.
 * - Cancel: aborting `signal` destroys the request and its response (unless the response body
 *   was read to its end), which drops the connection, so the engine server stops generating;
 *   a pending `request()` or body read then rejects with the signal's reason.
 */
import type { Readable } from 'node:stream';
import { Pool } from 'undici';
import type { AbortHandle } from './abort-handle.js';
import type { IncomingHttpHeaders } from 'undici/types/header.js';

/** Idle keep-alive connections are closed after this long (undici's default). */
export const IDLE_TIMEOUT_MS = 4_000;

export interface UpstreamRequest {
  method: 'GET' | 'POST';
  /** Appended to the base URL's path, e.g. `/chat/completions`. */
  path: string;
  headers: Record<string, string>;
  /** A JSON text; `content-length` is set from it. */
  body?: string | undefined;
  signal: AbortSignal | AbortHandle;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | undefined>;
  /** The body; read it to its end to give the connection back to the pool. */
  body: Readable;
}

export interface UpstreamHttp {
  request(req: UpstreamRequest): Promise<UpstreamResponse>;
  /** Closes the pool's connections; later requests open new ones. */
  closeIdle(): void;
}

export function createUpstreamHttp(baseUrl: string, opts: { maxSockets: number }): UpstreamHttp {
  const url = new URL(baseUrl);
  const basePath = url.pathname.replace(/\/+$/, '');
  const newPool = (): Pool => new Pool(url.origin, {
    connections: Number.isFinite(opts.maxSockets) ? opts.maxSockets : null,
    pipelining: 1,
    keepAliveTimeout: IDLE_TIMEOUT_MS,
    keepAliveMaxTimeout: IDLE_TIMEOUT_MS,
    keepAliveTimeoutThreshold: 1_000,
    headersTimeout: 0,
    bodyTimeout: 0,
  });
  let pool = newPool();

  async function request(r: UpstreamRequest): Promise<UpstreamResponse> {
    const { signal } = r;
    if (signal.aborted) throw abortReason(signal);
    const res = await pool.request({ path: basePath + r.path, method: r.method, headers: r.headers, body: r.body ?? null, signal });
    return { status: res.statusCode, headers: firstValues(res.headers), body: res.body };
  }

  return {
    request,
    closeIdle: () => {
      // A closed Pool takes no requests: the engine may start again after close().
      const old = pool;
      pool = newPool();
      void old.destroy();
    },
  };
}

/** One value per header, as node:http keeps them (the first of a repeated header). */
function firstValues(headers: IncomingHttpHeaders): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const name in headers) {
    const value = headers[name];
    out[name] = Array.isArray(value) ? value[0] : value;
  }
  return out;
}

/** The signal's reason when it is an Error (the stall timeout's), else a standard AbortError. */
function abortReason(signal: { readonly reason: unknown }): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new DOMException('This operation was aborted', 'AbortError');
}

/** Reads a whole body as text (embeddings answers: large, read whole). */
export async function readText(body: Readable): Promise<string> {
  body.setEncoding('utf8');
  let text = '';
  for await (const chunk of body) text += chunk as string;
  return text;
}
