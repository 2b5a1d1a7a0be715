/**
 * The gateway's gRPC listener (GATEWAY_GRPC_PORT): ChatService behind the rich error boundary,
 * plus the standard health service and server reflection, so grpcurl works as with the other
 * services. No service-token check here: callers authenticate with API keys, like over HTTP.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ChannelOptions } from '@grpc/grpc-js';
import { createServer } from 'nice-grpc';
import { HealthDefinition, HealthServiceImpl, HealthState } from 'nice-grpc-server-health';
import { ServerReflection, ServerReflectionService } from 'nice-grpc-server-reflection';
import { ChatServiceDefinition } from '../../../gen/xerotier/gateway/v1/chat_service.js';
import {
  WorkerTunnelServiceDefinition,
  type WorkerTunnelServiceImplementation,
} from '../../../gen/xerotier/gateway/v1/worker_tunnel_service.js';
import { setHealth } from '../../../lib/grpc/server.js';
import { callerDeadlineInterceptor } from './caller-deadline.js';
import { chatService, type ChatServiceDeps } from './chat-service.js';
import { callContextMiddleware, type GatewayCallContext } from './call-context.js';

export const CHAT_SERVICE_NAME = 'xerotier.gateway.v1.ChatService';
export const WORKER_TUNNEL_SERVICE_NAME = 'xerotier.gateway.v1.WorkerTunnelService';

const descriptorSetPath = path.join(import.meta.dirname, '..', '..', '..', 'gen', 'descriptor-set.binpb');

export interface GatewayGrpcServer {
  port: number;
  /** Reports NOT_SERVING, waits for running calls (they end at the drain grace), then closes. */
  shutdown(graceMs: number): Promise<void>;
}

export async function startGatewayGrpcServer(
  deps: ChatServiceDeps,
  host: string,
  port: number,
  /** Self-hosted workers' enrollment and tunnels (fleet/tunnel/), served beside ChatService. */
  workerTunnel: WorkerTunnelServiceImplementation<GatewayCallContext>,
): Promise<GatewayGrpcServer> {
  const names = [CHAT_SERVICE_NAME, WORKER_TUNNEL_SERVICE_NAME];
  // grpc-js server options (interceptors) pass through nice-grpc's createServer unchanged.
  const server = createServer({ interceptors: [callerDeadlineInterceptor] } as ChannelOptions);
  const health = HealthState();
  server.add(HealthDefinition, HealthServiceImpl(health));
  server.add(ServerReflectionService, ServerReflection(readFileSync(descriptorSetPath), names));
  server.with(callContextMiddleware(deps.logger)).add(ChatServiceDefinition, chatService(deps));
  server.with(callContextMiddleware(deps.logger)).add(WorkerTunnelServiceDefinition, workerTunnel);
  const bound = await server.listen(`${host}:${port}`);
  setHealth(health, names, true);
  deps.logger.info({ port: bound }, 'gateway gRPC listening');
  return {
    port: bound,
    async shutdown(graceMs) {
      setHealth(health, names, false);
      let timer: NodeJS.Timeout | undefined;
      const forced = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
      });
      await Promise.race([server.shutdown(), forced]);
      clearTimeout(timer);
    },
  };
}
