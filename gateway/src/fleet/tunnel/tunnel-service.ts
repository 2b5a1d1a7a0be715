/**
 * xerotier.gateway.v1.WorkerTunnelService: self-hosted workers enroll here (the auth service
 * decides), then dial out and hold one Connect stream. While it is open the worker is in the
 * fleet (pool `self-hosted`, owned by its project) with a tunnel client (tunnel-client.ts), so
 * it gets breaker, cancellation and deadlines like a dialled worker. Every `checkIntervalMs` the
 * gateway re-validates the credential with auth (also the worker's heartbeat and state): a
 * revoked worker or join key, or an expired credential, closes the tunnel at the next check.
 * If auth cannot be reached, a connected tunnel keeps serving for up to AUTH_OUTAGE_GRACE_MS.
 */
import type { Logger } from 'pino';
import type { CallContext } from 'nice-grpc';
import {
  type ConnectRequest,
  type ConnectResponse,
  type WorkerTunnelServiceImplementation,
} from '../../../../gen/xerotier/gateway/v1/worker_tunnel_service.js';
import { WorkerState } from '../../../../gen/xerotier/workers/v1/worker_service.js';
import { AppError, invalidRequest, isAppError, unauthenticated } from '../../../../lib/errors/app-error.js';
import { createOutbox } from '../../../../lib/grpc/outbox.js';
import { parseBearer } from '../../bearer.js';
import type { GatewayCallContext } from '../../grpc/call-context.js';
import type { Fleet } from '../fleet.js';
import { CHANNEL_WINDOW } from '../generate-channel.js';
import { createTunnelClient } from './tunnel-client.js';
import type { WorkersPort } from './workers-port.js';

/** The hardware pool of self-hosted workers (the `self_hosted` tier's pool). */
export const SELF_HOSTED_POOL = 'self-hosted';
/** How long a connected tunnel keeps serving while its credential cannot be checked. */
const AUTH_OUTAGE_GRACE_MS = 30_000;
/** A worker must say hello this soon after connecting. */
const HELLO_TIMEOUT_MS = 10_000;

export interface TunnelServiceDeps {
  workers: WorkersPort;
  fleet: Fleet;
  logger: Logger;
  /** Credential re-validation (and heartbeat) interval. */
  checkIntervalMs: number;
  /** True once the gateway stops: each tunnel closes as soon as no call is open on it. */
  draining: () => boolean;
  /**
   * Gateway processes sharing this gRPC port (GATEWAY_PROCESSES): above 1, a tunnel reaches only
   * the process it landed on, and each connection says so in a warning.
   */
  gatewayProcesses?: number | undefined;
}

type Context = CallContext & GatewayCallContext;

function credentialOf(context: CallContext): string {
  const credential = parseBearer(context.metadata.get('authorization'));
  if (!credential) {
    throw unauthenticated('Missing worker credential; expected metadata "authorization: Bearer <worker credential>".', {
      code: 'invalid_worker_credential',
    });
  }
  return credential;
}

async function firstMessage(iterator: AsyncIterator<ConnectRequest>): Promise<ConnectRequest> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(invalidRequest('No hello from the worker in time.')), HELLO_TIMEOUT_MS);
  });
  try {
    const first = await Promise.race([iterator.next(), late]);
    if (first.done || !first.value.hello) throw invalidRequest('The first message of a tunnel must be hello.', { param: 'hello' });
    return first.value;
  } finally {
    clearTimeout(timer);
  }
}

export function workerTunnelService(deps: TunnelServiceDeps): WorkerTunnelServiceImplementation<GatewayCallContext> {
  const { fleet, workers } = deps;
  /** The open tunnel of each worker id: a reconnecting worker replaces its previous tunnel. */
  const sessions = new Map<string, () => void>();

  return {
    async enroll(request, context: Context) {
      const enrolled = await workers.call(context.gateway.requestId, (c, o) =>
        c.enroll({ joinKey: request.joinKey, name: request.name, model: request.model }, o),
      );
      const worker = enrolled.worker;
      if (!worker) throw new AppError('internal', 'auth returned no worker');
      context.gateway.logger.info({ workerId: worker.id, project: enrolled.projectSlug }, 'self-hosted worker enrolled');
      return {
        workerId: worker.id,
        credential: enrolled.credential,
        credentialExpireTime: worker.credentialExpireTime,
        project: enrolled.projectSlug,
      };
    },

    async refreshCredential(_request, context: Context) {
      const credential = credentialOf(context);
      return workers.call(context.gateway.requestId, (c, o) => c.refreshCredential({ credential }, o));
    },

    async *connect(requests, context: Context) {
      const { logger, requestId } = context.gateway;
      const credential = credentialOf(context);
      const checked = await workers.call(requestId, (c, o) => c.checkWorker({ credential, state: WorkerState.WORKER_STATE_UNSPECIFIED, model: '' }, o));
      const record = checked.worker;
      if (!record) throw new AppError('internal', 'auth returned no worker');
      const iterator = requests[Symbol.asyncIterator]();
      const hello = await firstMessage(iterator);

      const out = createOutbox<ConnectResponse>();
      // The channel's window (generate-channel.ts): a caller that stops reading holds its generation.
      const tunnel = createTunnelClient((m) => out.push(m), CHANNEL_WINDOW);
      tunnel.receive(hello);
      const address = `tunnel:${record.id}`;
      const log = logger.child({ workerId: record.id, projectId: record.projectId });
      let endError: unknown;
      let ended = false;
      const end = (err?: unknown): void => {
        if (ended) return;
        ended = true;
        endError = err;
        out.close();
      };
      const replaced = (): void => end(new AppError('unavailable', 'A newer tunnel of this worker replaced this one.', { code: 'tunnel_replaced' }));
      sessions.get(record.id)?.();
      sessions.set(record.id, replaced);
      const worker = fleet.attach({ pool: SELF_HOSTED_POOL, address, owner: record.projectId }, tunnel.client);
      log.info({ model: hello.hello?.model }, 'self-hosted worker tunnel connected');
      if ((deps.gatewayProcesses ?? 1) > 1) {
        log.warn(
          { gatewayProcesses: deps.gatewayProcesses },
          'this tunnel reaches only this gateway process: requests the other gateway processes take do not route to it (serve self-hosted endpoints from a gateway with GATEWAY_PROCESSES=1)',
        );
      }

      // Everything the worker sends after its hello: status updates and call events.
      void (async () => {
        try {
          for (;;) {
            const next = await iterator.next();
            if (next.done) break;
            tunnel.receive(next.value);
          }
        } catch {
          // The worker went away; the stream's end below says so.
        }
        end();
      })();
      const onGone = (): void => end();
      context.signal.addEventListener('abort', onGone, { once: true });

      // Re-validation and heartbeat: a revoked worker is cut off at the next check.
      let lastOk = Date.now();
      let checking = false;
      const check = async (): Promise<void> => {
        if (checking || ended) return;
        checking = true;
        const status = tunnel.status();
        const state = status?.draining ? WorkerState.WORKER_STATE_DRAINING : WorkerState.WORKER_STATE_ONLINE;
        try {
          await workers.call(requestId, (c, o) => c.checkWorker({ credential, state, model: status?.model ?? '' }, o));
          lastOk = Date.now();
        } catch (err) {
          if (isAppError(err) && err.kind === 'unauthenticated') {
            log.warn({ reason: err.message }, 'self-hosted worker credential no longer valid; closing its tunnel');
            end(err);
          } else if (Date.now() - lastOk > AUTH_OUTAGE_GRACE_MS) {
            log.warn('self-hosted worker credential could not be checked for too long; closing its tunnel');
            end(new AppError('unavailable', 'The worker credential cannot be checked right now.', { code: 'auth_unavailable', retryAfterSeconds: 5 }));
          }
        } finally {
          checking = false;
        }
      };
      void check();
      const checker = setInterval(() => void check(), deps.checkIntervalMs);
      // A stopping gateway lets each tunnel's running calls finish, then closes it (the worker
      // reconnects, to another replica behind the same address if there is one).
      const drainer = setInterval(() => {
        if (deps.draining() && tunnel.openCalls() === 0) {
          end(new AppError('unavailable', 'The gateway is shutting down.', { code: 'gateway_draining', retryAfterSeconds: 1 }));
        }
      }, 200);

      try {
        yield* out.drain();
        if (endError !== undefined) throw endError;
      } finally {
        clearInterval(checker);
        clearInterval(drainer);
        context.signal.removeEventListener('abort', onGone);
        if (fleet.workers.includes(worker)) fleet.remove(address, 'tunnel');
        if (sessions.get(record.id) === replaced) sessions.delete(record.id);
        tunnel.close(new AppError('unavailable', 'The self-hosted worker disconnected.', { code: 'no_healthy_worker', retryAfterSeconds: 1 }));
        log.info({ reason: endError instanceof Error ? endError.message : 'closed' }, 'self-hosted worker tunnel closed');
        // Best effort: the listing shows it offline at once rather than after its heartbeat lapses.
        if (!(isAppError(endError) && endError.kind === 'unauthenticated') && !fleet.workers.some((w) => w.address === address)) {
          void workers
            .call(requestId, (c, o) => c.checkWorker({ credential, state: WorkerState.WORKER_STATE_OFFLINE, model: '' }, o))
            .catch(() => undefined);
        }
      }
    },
  };
}
