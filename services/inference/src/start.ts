/**
 * startInferenceWorker: builds and starts one inference process (no signal handling; main.ts
 * owns that). Tests call it directly on port 0 with an engine of their choice.
 */
import { createInferenceMetrics } from './metrics.js';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { InferenceServiceDefinition, type ServedModel } from '../../../gen/xerotier/inference/v1/inference_service.js';
import { servedModelId } from './model-id.js';
import { createGrpcServer, setHealth } from '../../../lib/grpc/server.js';
import { withReusedResponseWriter } from '../../../lib/grpc/server-encode.js';
import { createAdmission } from './admission.js';
import type { InferenceConfig } from './config.js';
import { advertiseAddress, joinFleet, type Registration } from './registration.js';
import { grpcTls } from '../../../lib/grpc/tls.js';
import type { Engine } from './engines/engine.js';
import { describeHardware, detectCpu, hardwareClassToProto, hardwareMismatch } from './hardware.js';
import { createInferenceService, type InferenceService } from './inference-service.js';
import { WorkerTunnelServiceDefinition } from '../../../gen/xerotier/gateway/v1/worker_tunnel_service.js';
import { createAppClient, createGrpcChannel } from '../../../lib/grpc/client.js';
import { enroll, type Enrollment } from './tunnel/enroll.js';
import { startTunnelAgent, type TunnelAgent } from './tunnel/agent.js';

/** Reported to the fleet registry. */
const WORKER_VERSION = '0.1.0';

export interface InferenceWorker {
  /** 0 for a self-hosted worker: it listens on no port (it dials out). */
  port: number;
  metricsPort: number | undefined;
  workerId: string;
  /** Resolves when the engine can serve (model downloaded and loaded); rejects if it cannot. */
  ready: Promise<void>;
  service: InferenceService;
  /** Drains (bounded by the grace period), then stops the server and the engine. */
  stop(): Promise<void>;
}

export async function startInferenceWorker(
  config: InferenceConfig,
  deps: { logger: Logger; engine: Engine; gpu?: () => string | false },
): Promise<InferenceWorker> {
  const { logger, engine } = deps;
  const cpu = detectCpu();
  const gpu = deps.gpu ?? (() => false);
  let hardwareDescription = describeHardware(cpu, false);
  /** Refuses a declared class the process cannot serve (GPU known only once the engine loaded). */
  const checkHardware = (): void => {
    hardwareDescription = describeHardware(cpu, gpu());
    const mismatch = hardwareMismatch(config.INFERENCE_HARDWARE_CLASS, cpu, gpu());
    if (!mismatch) return;
    if (!config.INFERENCE_ALLOW_HARDWARE_MISMATCH) {
      throw new Error(`${mismatch}; set INFERENCE_ALLOW_HARDWARE_MISMATCH=true to serve anyway`);
    }
    logger.warn({ mismatch }, 'serving a hardware class that does not match the detected hardware');
  };
  if (config.INFERENCE_HARDWARE_CLASS.startsWith('cpu-')) checkHardware();
  // Self-hosted mode: enroll first; the platform's worker id is then the id this worker reports.
  const platform = config.INFERENCE_PLATFORM_ADDRESS;
  const tunnelChannel = platform === undefined ? undefined : createGrpcChannel(platform);
  const tunnelClient = tunnelChannel && createAppClient(WorkerTunnelServiceDefinition, tunnelChannel, { address: platform ?? '', target: 'platform' });
  const startAbort = new AbortController();
  let enrollment: Enrollment | undefined;
  if (tunnelClient && config.INFERENCE_JOIN_KEY !== undefined) {
    try {
      enrollment = await enroll(
        tunnelClient,
        { joinKey: config.INFERENCE_JOIN_KEY, name: config.INFERENCE_WORKER_ID ?? '', model: engine.info().model },
        logger,
        startAbort.signal,
      );
    } catch (err) {
      tunnelChannel?.close();
      throw err;
    }
    logger.info({ workerId: enrollment.workerId, project: enrollment.project }, 'enrolled as a self-hosted worker');
  }
  const workerId =
    enrollment?.workerId ?? config.INFERENCE_WORKER_ID ?? `${config.INFERENCE_HARDWARE_CLASS}-${randomBytes(3).toString('hex')}`;
  let service: InferenceService | undefined;
  const metrics = createInferenceMetrics({
    workerLoad: () => {
      if (!service) return undefined;
      const s = service.status();
      return { worker: workerId, inFlight: s.inFlightCount, queued: s.queuedCount, tokensPerSecond: s.tokensPerSecond };
    },
  });
  /** What the worker serves, by platform model id (registry record and status stream). */
  const models = (): ServedModel[] => {
    const info = engine.info();
    return [{ id: servedModelId(info, config.INFERENCE_MODEL_ID), contextWindow: info.contextWindow, capabilities: ['chat'] }];
  };
  service = createInferenceService({
    logger,
    models,
    metrics,
    callMetrics: metrics,
    pool: config.INFERENCE_HARDWARE_CLASS,
    engine,
    admission: createAdmission(config.INFERENCE_CAPACITY, config.INFERENCE_QUEUE_CAPACITY),
    workerId,
    hardwareClass: hardwareClassToProto[config.INFERENCE_HARDWARE_CLASS],
    hardwareDescription: () => hardwareDescription,
  });
  const grpc = createGrpcServer({
    tls: grpcTls(config),
    logger,
    serviceNames: [InferenceServiceDefinition.fullName],
    serviceToken: config.SERVICE_TOKEN,
    metrics,
    metricsPort: config.INFERENCE_METRICS_PORT,
  });
  // A generation sends a start, a message per delta (the deltas ready together joined in one) and a
  // final message: encode them all through one writer.
  grpc.server.add(withReusedResponseWriter(InferenceServiceDefinition), service.impl);
  // Health says NOT_SERVING until the engine can serve (a model may still be downloading).
  const names = [InferenceServiceDefinition.fullName];
  setHealth(grpc.health, names, false);
  // A self-hosted worker listens on no port: its calls arrive through the tunnel it opens.
  const port = enrollment ? 0 : await grpc.listen(config.INFERENCE_HOST, config.INFERENCE_PORT);
  if (!enrollment) logger.info({ port, workerId, hardware: config.INFERENCE_HARDWARE_CLASS }, 'inference worker listening');
  let registration: Registration | undefined;
  let tunnel: TunnelAgent | undefined;
  const ready = (engine.ready() ? Promise.resolve() : engine.start(startAbort.signal)).then(() => {
    checkHardware();
    setHealth(grpc.health, names, true);
    logger.info({ engine: engine.info() }, 'engine ready');
    if (enrollment && tunnelClient && !startAbort.signal.aborted) {
      tunnel = startTunnelAgent({ client: tunnelClient, enrollment, service, logger });
      return;
    }
    // Routable once it can serve: join the fleet so gateways pick it up without a restart.
    if (config.INFERENCE_REGISTRY_ADDRESS !== 'off' && !startAbort.signal.aborted) {
      const address = advertiseAddress(config.INFERENCE_HOST, port, config.INFERENCE_ADVERTISE_ADDRESS);
      registration = joinFleet({
        registryAddress: config.INFERENCE_REGISTRY_ADDRESS,
        serviceToken: config.SERVICE_TOKEN,
        tls: grpcTls(config),
        logger,
        describe: () => {
          return {
            workerId,
            address,
            pool: config.INFERENCE_HARDWARE_CLASS,
            models: models(),
            capacity: config.INFERENCE_CAPACITY,
            version: WORKER_VERSION,
            ownerProject: '',
          };
        },
      });
    }
  });

  return {
    port,
    metricsPort: grpc.metricsPort(),
    workerId,
    ready,
    service,
    async stop() {
      startAbort.abort();
      // Leave the fleet first, so gateways stop sending new work while running calls drain.
      await registration?.leave();
      setHealth(grpc.health, names, false);
      const grace = config.INFERENCE_DRAIN_GRACE_MS;
      await Promise.race([service.drain(), new Promise((r) => setTimeout(r, grace).unref())]);
      await tunnel?.stop();
      tunnelChannel?.close();
      await grpc.shutdown(1000);
      await engine.close();
    },
  };
}

