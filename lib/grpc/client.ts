/**
 * Typed gRPC clients for internal hops: one channel per target with keepalive, the service
 * credential and request id in metadata, a per-call deadline, and gRPC errors mapped back to
 * AppError (once, here).
 */
import {
  ClientError,
  createChannel,
  createClientFactory,
  Metadata,
  Status,
  type Channel,
  type ClientMiddlewareCall,
  type CallOptions,
  type CompatServiceDefinition,
  type Client,
} from 'nice-grpc';
import { fromClientError } from '../errors/grpc.js';
import { REQUEST_ID_METADATA } from './server.js';
import { SERVICE_TOKEN_METADATA } from './service-auth.js';
import { channelCredentials, type GrpcTlsFiles } from './tls.js';

export interface ClientOptions {
  /** host:port */
  address: string;
  /** Name used in error messages (never the address). */
  target: string;
  serviceToken?: string | undefined;
}

/** Per-call deadline: a Date, or milliseconds from now. The call is cancelled when it passes. */
export interface DeadlineOptions {
  deadline?: Date | number | undefined;
}

export type AppClient<D extends CompatServiceDefinition> = Client<D, DeadlineOptions>;

/** A channel to an internal service; with `tls`, mutual TLS against the configured CA (tls.ts). */
export function createGrpcChannel(address: string, tls?: GrpcTlsFiles): Channel {
  return createChannel(address, channelCredentials(tls), {
    // Detect a silently dead peer (a worker that vanished without closing its connections)
    // within about 20 s, without pinging often enough to trip the server's too_many_pings.
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_reconnect_backoff_ms': 2_000,
    'grpc.initial_reconnect_backoff_ms': 200,
  });
}

export function createAppClient<D extends CompatServiceDefinition>(
  definition: D,
  channel: Channel,
  options: ClientOptions,
): AppClient<D> {
  // One middleware layer per call: each layer is an async generator on the hot path.
  return createClientFactory()
    .use(appClientMiddleware(options.target, options.serviceToken))
    .create(definition, channel);
}

/** Per-call options: request id propagation, cancellation and deadline (Date or ms from now). */
export function callOptions(
  requestId: string,
  signal?: AbortSignal,
  deadline?: Date | number,
): CallOptions & DeadlineOptions {
  const options: CallOptions & DeadlineOptions = { metadata: Metadata({ [REQUEST_ID_METADATA]: requestId }) };
  if (signal) options.signal = signal;
  if (deadline !== undefined) options.deadline = deadline;
  return options;
}

/**
 * Everything an internal call needs, in one layer: the service credential, the deadline
 * (cancelled when it passes and reported as DEADLINE_EXCEEDED), and gRPC errors mapped back to
 * AppError with the server's `x-error-*` trailers.
 */
function appClientMiddleware(target: string, token: string | undefined) {
  return async function* middleware<Req, Res>(
    call: ClientMiddlewareCall<Req, Res, DeadlineOptions>,
    options: CallOptions & DeadlineOptions,
  ) {
    const { deadline, signal: callerSignal, onTrailer, ...rest } = options;
    let trailer: Metadata | undefined;
    // The call's own metadata (callOptions makes one per call) takes the credential: no copy.
    const metadata = options.metadata ?? Metadata();
    if (token) metadata.set(SERVICE_TOKEN_METADATA, token);
    const next: CallOptions = {
      ...rest,
      metadata,
      onTrailer(t: Metadata) {
        trailer = t;
        onTrailer?.(t);
      },
    };
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    let followCaller: (() => void) | undefined;
    if (deadline === undefined) {
      if (callerSignal) next.signal = callerSignal;
    } else {
      // One controller for the deadline and the caller's signal (a listener, removed below,
      // rather than a per-call AbortSignal.any).
      const controller = new AbortController();
      const ms = deadline instanceof Date ? deadline.getTime() - Date.now() : deadline;
      timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, Math.max(0, ms));
      if (callerSignal?.aborted) controller.abort(callerSignal.reason);
      else if (callerSignal) {
        followCaller = () => controller.abort(callerSignal.reason);
        callerSignal.addEventListener('abort', followCaller, { once: true });
      }
      next.signal = controller.signal;
    }
    try {
      return yield* call.next(call.request, next);
    } catch (err) {
      const cause = timedOut ? new ClientError(call.method.path, Status.DEADLINE_EXCEEDED, 'Deadline exceeded') : err;
      throw fromClientError(cause, trailer, target);
    } finally {
      clearTimeout(timer);
      if (followCaller) callerSignal?.removeEventListener('abort', followCaller);
    }
  };
}
