/**
 * A JSON response written straight to the socket: the headers express's `res.json` would set
 * (`application/json; charset=utf-8` and the length) without its per-response work (content-type
 * lookup and charset rewrite, freshness check, a Buffer copy of large bodies). For the
 * completion responses on the hot path; headers set before (request id, rate limits, worker id)
 * are kept.
 */
import type { ServerResponse } from 'node:http';

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(json));
  res.end(json);
}
