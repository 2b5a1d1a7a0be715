/**
 * The dial-out side of a self-hosted worker: keeps one Connect stream open to the platform with
 * its worker credential (no listening port needed: it works behind NAT). Up the stream: a hello
 * with the worker's status, status updates, and the events of each call; down it: generations
 * (with call id and deadline) and cancellations, run on the local InferenceService exactly as a
 * gRPC call would be. Reconnects with backoff while the platform is unreachable; stops for good
 * when the credential is refused (revoked worker or join key: re-enrolling would undo that).
 * Refreshes its credential at half its remaining lifetime.
 */
import { delay } from 'abort-controller-x';
import { Metadata, type CallContext } from 'nice-grpc';
import type { Logger } from 'pino';
import type { ConnectRequest, DeepPartial, Generate } from '../../../../gen/xerotier/gateway/v1/worker_tunnel_service.js';
import { AppError, isAppError } from '../../../../lib/errors/app-error.js';
import type { RequestContext } from '../../../../lib/grpc/server.js';
import type { InferenceService } from '../inference-service.js';
import { retryable, type Enrollment, type TunnelServiceClient } from './enroll.js';

export interface TunnelAgentOptions {
  client: TunnelServiceClient;
  enrollment: Enrollment;
  service: InferenceService;
  logger: Logger;
  /** Called once when the platform refuses the credential for good. */
  onRefused?: ((err: unknown) => void) | undefined;
}

export interface TunnelAgent {
  /** Whether the tunnel is open now. */
  connected(): boolean;
  /** Closes the tunnel (running calls are cancelled) and stops reconnecting. */
  stop(): Promise<void>;
}

type Outgoing = DeepPartial<ConnectRequest>;

/** A one-consumer queue of outgoing messages that ends with the connection. */
function outbox() {
  const items: Outgoing[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  return {
    push(m: Outgoing) {
      if (closed) return;
      items.push(m);
      wake?.();
    },
    close() {
      closed = true;
      wake?.();
    },
    async *drain(): AsyncGenerator<Outgoing> {
      for (;;) {
        const m = items.shift();
        if (m) {
          yield m;
          continue;
        }
        if (closed) return;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    },
  };
}

function tunnelError(err: unknown) {
  // Only platform errors are passed on as they are; anything else stays on this machine.
  const app = isAppError(err) ? err : new AppError('internal', 'inference worker failed');
  return {
    kind: app.kind,
    code: app.code,
    message: app.kind === 'internal' ? 'inference worker failed' : app.message,
    param: app.param ?? '',
    retryAfterSeconds: app.retryAfterSeconds ?? 0,
  };
}

export function startTunnelAgent(options: TunnelAgentOptions): TunnelAgent {
  const { client, service, logger } = options;
  let credential = options.enrollment.credential;
  let expiresAt = options.enrollment.credentialExpiresAt.getTime();
  const stop = new AbortController();
  let connected = false;

  /** Runs one generation the platform sent and reports its events up the tunnel. */
  async function run(g: Generate, send: (m: Outgoing) => void, calls: Map<string, AbortController>): Promise<void> {
    const abort = new AbortController();
    calls.set(g.callId, abort);
    let timedOut = false;
    const ms = g.deadline ? g.deadline.getTime() - Date.now() : undefined;
    const timer =
      ms === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            abort.abort();
          }, Math.max(0, ms));
    const context = {
      signal: abort.signal,
      metadata: Metadata(),
      peer: 'tunnel',
      header: Metadata(),
      sendHeader: () => undefined,
      trailer: Metadata(),
      requestId: g.requestId || 'none',
      logger: logger.child({ reqId: g.requestId || 'none', callId: g.callId }),
    } satisfies CallContext & RequestContext;
    try {
      if (!g.request) throw new AppError('invalid_request', 'generate without a request');
      for await (const response of service.impl.generate(g.request, context)) {
        // Past the deadline the generation ends as cancelled; the platform is told why instead,
        // as a dialled worker's caller learns it from the gRPC deadline (a 504, not a cancel).
        if (timedOut) break;
        send({ callEvent: { callId: g.callId, response } });
      }
      if (timedOut) send({ callError: { callId: g.callId, error: tunnelError(new AppError('timeout', 'generation deadline passed')) } });
      else send({ callEnd: g.callId });
    } catch (err) {
      // A cancelled call needs no answer; a call past its deadline says so.
      if (timedOut) send({ callError: { callId: g.callId, error: tunnelError(new AppError('timeout', 'generation deadline passed')) } });
      else if (!abort.signal.aborted) send({ callError: { callId: g.callId, error: tunnelError(err) } });
    } finally {
      clearTimeout(timer);
      calls.delete(g.callId);
    }
  }

  /** One connection: until the stream ends. */
  async function session(): Promise<void> {
    const out = outbox();
    const calls = new Map<string, AbortController>();
    const sessionAbort = new AbortController();
    const signal = AbortSignal.any([stop.signal, sessionAbort.signal]);
    out.push({ hello: service.status() });
    // Status updates as the service produces them (load changes, at least every second).
    const statusLoop = (async () => {
      const ctx = { signal, metadata: Metadata(), peer: 'tunnel', header: Metadata(), sendHeader: () => undefined, trailer: Metadata() } satisfies CallContext;
      try {
        for await (const update of service.impl.watchStatus({ intervalMs: 1000 }, { ...ctx, requestId: 'status', logger })) {
          if (update.status) out.push({ status: update.status });
        }
      } catch {
        // Ends with the session.
      }
    })();
    const metadata = Metadata({ authorization: `Bearer ${credential}` });
    try {
      for await (const message of client.connect(out.drain(), { metadata, signal })) {
        if (!connected) logger.info({ workerId: options.enrollment.workerId }, 'tunnel to the platform connected');
        connected = true;
        if (message.generate) void run(message.generate, (m) => out.push(m), calls);
        else if (message.cancel !== undefined) calls.get(message.cancel)?.abort();
      }
    } finally {
      connected = false;
      sessionAbort.abort();
      out.close();
      for (const c of calls.values()) c.abort();
      await statusLoop;
    }
  }

  const loop = (async () => {
    let backoff = 100;
    while (!stop.signal.aborted) {
      const started = Date.now();
      try {
        await session();
        if (stop.signal.aborted) return;
        logger.warn('tunnel closed by the platform; reconnecting');
      } catch (err) {
        if (stop.signal.aborted) return;
        if (!retryable(err)) {
          logger.error({ err }, 'the platform refused this worker; not reconnecting (enroll again with a join key)');
          options.onRefused?.(err);
          return;
        }
        logger.warn({ err, retryInMs: backoff }, 'tunnel to the platform lost; reconnecting');
      }
      if (Date.now() - started > 10_000) backoff = 100;
      await delay(stop.signal, backoff).catch(() => undefined);
      backoff = Math.min(backoff * 2, 2000);
    }
  })();

  // Credential refresh at half the remaining lifetime (checked every few seconds).
  const refresher = (async () => {
    while (!stop.signal.aborted) {
      const wait = Math.max(1000, Math.floor((expiresAt - Date.now()) / 2));
      await delay(stop.signal, Math.min(wait, 60_000)).catch(() => undefined);
      if (stop.signal.aborted) return;
      if (expiresAt - Date.now() > wait) continue;
      try {
        const r = await client.refreshCredential({}, { metadata: Metadata({ authorization: `Bearer ${credential}` }), signal: stop.signal, deadline: 5000 });
        if (r.credentialExpireTime) expiresAt = r.credentialExpireTime.getTime();
      } catch (err) {
        if (!stop.signal.aborted) logger.warn({ err }, 'could not refresh the worker credential; retrying');
      }
    }
  })();

  return {
    connected: () => connected,
    async stop() {
      stop.abort();
      await loop;
      await refresher;
    },
  };
}
