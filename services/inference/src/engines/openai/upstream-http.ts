/**
 * The openai engine's HTTP transport: node:http (node:https for an `https` base URL) over one
 * keep-alive Agent per engine, bodies as Node streams. It replaces the global fetch, whose WHATWG
 * Request/Response/ReadableStream layers cost the worker more CPU per streamed token than the
 * rest of a generation (docs/decisions.md has the figures).
 *
 * - Connections: up to `maxSockets` to the upstream (the worker's capacity: one per running
 *   generation), reused while idle; an idle connection is closed before the upstream's own
 *   keep-alive timeout (its `Keep-Alive: timeout=` hint, at most {@link IDLE_TIMEOUT_MS}), so a
 *   request is not sent on a connection the upstream is closing.
 * - TLS: node:https with Node's default trust store (`NODE_EXTRA_CA_CERTS` included), like fetch.
 * - Cancel: aborting `signal` destroys the request and its response (unless the response body
 *   was read to its end), which drops the connection, so the engine server stops generating;
 *   a pending `request()` or body read then rejects.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { urlToHttpOptions } from 'node:url';

/** Idle keep-alive connections are closed after this long (undici's default, fetch's behaviour). */
export const IDLE_TIMEOUT_MS = 4_000;

export interface UpstreamRequest {
  method: 'GET' | 'POST';
  /** Appended to the base URL's path, e.g. `/chat/completions`. */
  path: string;
  headers: Record<string, string>;
  /** A JSON text; `content-length` is set from it. */
  body?: string | undefined;
  signal: AbortSignal;
}

export interface UpstreamResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body; read it to its end to give the connection back to the pool. */
  body: IncomingMessage;
}

export interface UpstreamHttp {
  request(req: UpstreamRequest): Promise<UpstreamResponse>;
  /** Closes the idle connections (requests still in flight are aborted by their signals). */
  closeIdle(): void;
}

export function createUpstreamHttp(baseUrl: string, opts: { maxSockets: number }): UpstreamHttp {
  const url = new URL(baseUrl);
  const secure = url.protocol === 'https:';
  const agentOptions = { keepAlive: true, maxSockets: opts.maxSockets, timeout: IDLE_TIMEOUT_MS, scheduling: 'lifo' as const };
  const agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  const send = secure ? https.request : http.request;
  // urlToHttpOptions strips an IPv6 literal's brackets; no credentials (normalizeBaseUrl refuses them).
  const { protocol, hostname, port } = urlToHttpOptions(url);
  const basePath = url.pathname.replace(/\/+$/, '');
  // The Host header node:http would send: URL.host brackets an IPv6 literal and omits a default port.
  const hostHeader = url.host;

  function request(r: UpstreamRequest): Promise<UpstreamResponse> {
    const { signal } = r;
    if (signal.aborted) return Promise.reject(abortReason(signal));
    return new Promise<UpstreamResponse>((resolve, reject) => {
      const req = send({ protocol, hostname, port, path: basePath + r.path, method: r.method, headers: headerList(hostHeader, r), agent });
      let res: IncomingMessage | undefined;
      signal.addEventListener(
        'abort',
        () => {
          if (res?.complete) return; // read to its end: the connection is back in the pool
          const reason = abortReason(signal);
          req.destroy(reason);
          res?.destroy(reason);
          reject(reason); // no-op once the response arrived
        },
        { once: true },
      );
      req.once('response', (m: IncomingMessage) => {
        res = m;
        resolve({ status: m.statusCode ?? 0, headers: m.headers, body: m });
      });
      // `on`, not `once`: a socket error after the response is emitted here too (a no-op then).
      req.on('error', reject);
      req.end(r.body);
    });
  }

  return {
    request,
    closeIdle: () => agent.destroy(),
  };
}

/**
 * The request's headers as node:http's flat `[name, value, …]` list: node:http then writes them as
 * given (still validated) instead of storing each through setHeader, and adds no Host header
 * itself, so it comes first here. `content-length` is set from the body.
 */
function headerList(host: string, r: UpstreamRequest): string[] {
  const list = ['host', host];
  for (const name in r.headers) {
    const value = r.headers[name];
    if (value !== undefined) list.push(name, value);
  }
  if (r.body !== undefined) list.push('content-length', String(Buffer.byteLength(r.body)));
  return list;
}

/** The signal's reason when it is an Error (the stall timeout's), else a standard AbortError. */
function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new DOMException('This operation was aborted', 'AbortError');
}

/** Reads a whole body as text (embeddings answers: large, read whole). */
export async function readText(body: IncomingMessage): Promise<string> {
  body.setEncoding('utf8');
  let text = '';
  for await (const chunk of body) text += chunk as string;
  return text;
}
