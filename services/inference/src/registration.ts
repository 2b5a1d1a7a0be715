/**
 * A worker's membership in the fleet: registers with the registry and renews its lease at a third
 * of the lease time, re-registering whenever the registry forgets it (a restart) or was
 * unreachable; deregisters when the worker starts draining, so gateways stop routing to it before
 * it goes away. Registration failures are logged once per outage and never stop the worker.
 */
import { hostname } from 'node:os';
import { delay } from 'abort-controller-x';
import type { Logger } from 'pino';
import { RegistryServiceDefinition, type RegisteredWorker } from '../../../gen/xerotier/registry/v1/registry_service.js';
import { callOptions, createAppClient, createGrpcChannel } from '../../../lib/grpc/client.js';
import type { GrpcTlsFiles } from '../../../lib/grpc/tls.js';

export interface RegistrationOptions {
  registryAddress: string;
  serviceToken?: string | undefined;
  tls?: GrpcTlsFiles | undefined;
  /** The record to announce; read again at every renewal (models and capacity may change). */
  describe: () => RegisteredWorker;
  logger: Logger;
}

export interface Registration {
  /** Deregisters (bounded) and stops renewing. */
  leave(): Promise<void>;
}

/** host:port gateways should dial: the listen host, or this machine's name when listening on all interfaces. */
export function advertiseAddress(listenHost: string, port: number, configured: string | undefined): string {
  if (configured) return configured;
  const host = listenHost === '0.0.0.0' || listenHost === '::' ? hostname() : listenHost;
  return `${host}:${port}`;
}

export function joinFleet(options: RegistrationOptions): Registration {
  const { logger } = options;
  const channel = createGrpcChannel(options.registryAddress, options.tls);
  const client = createAppClient(RegistryServiceDefinition, channel, {
    address: options.registryAddress,
    target: 'fleet registry',
    serviceToken: options.serviceToken,
  });
  const stop = new AbortController();
  const loop = (async () => {
    let failing = false;
    let registeredOnce = false;
    while (!stop.signal.aborted) {
      let waitMs = 1000;
      try {
        const { leaseTtlMs } = await client.register({ worker: options.describe() }, callOptions('registry', stop.signal, 2000));
        if (failing || !registeredOnce) logger.info({ registry: options.registryAddress, leaseTtlMs }, 'registered with the fleet registry');
        registeredOnce = true;
        failing = false;
        waitMs = Math.max(100, Math.floor(leaseTtlMs / 3));
      } catch (err) {
        if (stop.signal.aborted) return;
        if (!failing) logger.warn({ registry: options.registryAddress, err }, 'fleet registry unreachable; retrying');
        failing = true;
      }
      await delay(stop.signal, waitMs).catch(() => undefined);
    }
  })();
  return {
    async leave() {
      stop.abort();
      await loop;
      await client
        .deregister({ workerId: options.describe().workerId }, callOptions('registry', undefined, 1000))
        .catch((err: unknown) => logger.warn({ err }, 'could not deregister from the fleet registry'));
      channel.close();
    },
  };
}
