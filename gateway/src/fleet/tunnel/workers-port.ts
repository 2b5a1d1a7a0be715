/**
 * The gateway's client of the auth service's WorkerService (join keys, enrollment, worker
 * credentials and records), behind its own breaker and deadline, with auth's failure mapping:
 * an unreachable auth is a 503 `auth_unavailable`, its answers pass through.
 */
import { WorkerServiceDefinition } from '../../../../gen/xerotier/workers/v1/worker_service.js';
import { callOptions, createAppClient, createGrpcChannel, type AppClient } from '../../../../lib/grpc/client.js';
import type { GrpcTlsFiles } from '../../../../lib/grpc/tls.js';
import type { Logger } from 'pino';
import type { Breaker } from '../../breaker.js';
import { closeBreakerOnReconnect } from '../../breaker-reconnect.js';
import { authFailure } from '../../failure-policy.js';

export type WorkersClient = AppClient<typeof WorkerServiceDefinition>;

export interface WorkersPort {
  call<T>(requestId: string, op: (client: WorkersClient, options: ReturnType<typeof callOptions>) => Promise<T>): Promise<T>;
  close(): void;
}

export function createWorkersPort(options: {
  address: string;
  tls?: GrpcTlsFiles | undefined;
  serviceToken?: string | undefined;
  timeoutMs: number;
  breaker: Breaker;
  logger: Logger;
}): WorkersPort {
  const channel = createGrpcChannel(options.address, options.tls);
  closeBreakerOnReconnect(channel, options.breaker, options.logger);
  const client = createAppClient(WorkerServiceDefinition, channel, {
    address: options.address,
    target: 'auth service',
    serviceToken: options.serviceToken,
  });
  return {
    call: (requestId, op) =>
      options.breaker.run(() => op(client, callOptions(requestId, undefined, options.timeoutMs))).catch((err: unknown) => {
        throw authFailure(err);
      }),
    close: () => channel.close(),
  };
}
