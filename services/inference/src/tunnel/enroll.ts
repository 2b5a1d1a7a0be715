/**
 * Enrollment of a self-hosted worker: trades the join key for a worker id and credential at the
 * platform's gRPC front door (WorkerTunnelService.Enroll). Retries while the platform cannot be
 * reached; a refused join key is final (the error says why).
 */
import { delay } from 'abort-controller-x';
import type { Logger } from 'pino';
import { WorkerTunnelServiceDefinition } from '../../../../gen/xerotier/gateway/v1/worker_tunnel_service.js';
import { isAppError } from '../../../../lib/errors/app-error.js';
import { callOptions, type AppClient } from '../../../../lib/grpc/client.js';

export type TunnelServiceClient = AppClient<typeof WorkerTunnelServiceDefinition>;

export interface Enrollment {
  workerId: string;
  credential: string;
  credentialExpiresAt: Date;
  /** Slug of the owner project. */
  project: string;
}

/** Errors worth retrying: the platform is down or busy, not a refusal of the join key. */
export const retryable = (err: unknown): boolean => isAppError(err) && (err.kind === 'unavailable' || err.kind === 'timeout' || err.kind === 'internal');

export async function enroll(
  client: TunnelServiceClient,
  request: { joinKey: string; name: string; model: string },
  logger: Logger,
  signal: AbortSignal,
): Promise<Enrollment> {
  let backoff = 200;
  for (;;) {
    try {
      const r = await client.enroll(request, callOptions('enroll', signal, 5000));
      if (!r.credentialExpireTime) throw new Error('enrollment returned no credential expiry');
      return { workerId: r.workerId, credential: r.credential, credentialExpiresAt: r.credentialExpireTime, project: r.project };
    } catch (err) {
      if (signal.aborted || !retryable(err)) throw err;
      logger.warn({ err, retryInMs: backoff }, 'platform unreachable for enrollment; retrying');
      await delay(signal, backoff);
      backoff = Math.min(backoff * 2, 5000);
    }
  }
}
