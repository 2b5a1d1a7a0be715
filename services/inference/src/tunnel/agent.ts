/**
 * The dial-out side of a self-hosted worker: keeps one Connect stream open to the platform with
 * its worker credential (no listening port needed: it works behind NAT). Up the stream: a hello
 * with the worker's status, status updates, and the events of each call; down it: generations
 * (with call id and deadline) and cancellations, run on the local InferenceService exactly as a
 * gRPC call would be (calls/call-runner.ts). Reconnects with backoff while the platform is unreachable; stops for good
 * when the credential is refused (revoked worker or join key: re-enrolling would undo that).
 * Refreshes its credential at half its remaining lifetime.
 */
import { delay } from 'abort-controller-x';
import { Metadata, type CallContext } from 'nice-grpc';
import type { Logger } from 'pino';
import type { ConnectRequest, DeepPartial } from '../../../../gen/xerotier/gateway/v1/worker_tunnel_service.js';
import type { InferenceService } from '../inference-service.js';
import { CallRunner } from '../calls/call-runner.js';
import { createOutbox } from '../../../../lib/grpc/outbox.js';
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

export function startTunnelAgent(options: TunnelAgentOptions): TunnelAgent {
  const { client, service, logger } = options;
  let credential = options.enrollment.credential;
  let expiresAt = options.enrollment.credentialExpiresAt.getTime();
  const stop = new AbortController();
  let connected = false;

  /** One connection: until the stream ends. */
  async function session(): Promise<void> {
    const out = createOutbox<Outgoing>();
    const calls = new CallRunner(service.impl.generate, logger, (m) => out.push(m), 'tunnel', '/xerotier.gateway.v1.WorkerTunnelService/Connect');
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
        if (message.generate) calls.start(message.generate);
        else if (message.credit) calls.credit(message.credit.callId, message.credit.events);
        else if (message.cancel !== undefined) calls.cancel(message.cancel);
      }
    } finally {
      connected = false;
      sessionAbort.abort();
      out.close();
      calls.cancelAll();
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
