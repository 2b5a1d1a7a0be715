/**
 * Typed gRPC clients for internal hops: one channel per target with keepalive, the service
 * credential and request id in metadata, and gRPC errors mapped back to AppError (once, here).
 */
import {
  createChannel,
  createClientFactory,
  Metadata,
  type Channel,
  type ClientMiddlewareCall,
  type CallOptions,
  type CompatServiceDefinition,
  type Client,
} from 'nice-grpc';
import { deadlineMiddleware, type DeadlineOptions } from 'nice-grpc-client-middleware-deadline';
import { fromClientError } from '../errors/grpc.js';
import { REQUEST_ID_METADATA } from './server.js';
import { SERVICE_TOKEN_METADATA } from './service-auth.js';

export interface ClientOptions {
  /** host:port */
  address: string;
  /** Name used in error messages (never the address). */
  target: string;
  serviceToken?: string | undefined;
}

export type AppClient<D extends CompatServiceDefinition> = Client<D, DeadlineOptions>;

export function createGrpcChannel(address: string): Channel {
  return createChannel(address, undefined, {
    // Detect a silently dead peer (reliability plan T14) without tripping too_many_pings.
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
  // For clients the middleware added last is the outermost: errors are mapped last, so a
  // deadline or credential failure reaches callers as an AppError too.
  return createClientFactory()
    .use(deadlineMiddleware)
    .use(credentialMiddleware(options.serviceToken))
    .use(errorMiddleware(options.target))
    .create(definition, channel);
}

/**
 * Per-call options: request id propagation, cancellation and deadline. A `deadline` is a Date,
 * or a number of milliseconds from now (nice-grpc-client-middleware-deadline semantics).
 */
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

function credentialMiddleware(token: string | undefined) {
  return async function* middleware<Req, Res>(call: ClientMiddlewareCall<Req, Res>, options: CallOptions) {
    if (!token) return yield* call.next(call.request, options);
    const metadata = Metadata(options.metadata).set(SERVICE_TOKEN_METADATA, token);
    return yield* call.next(call.request, { ...options, metadata });
  };
}

function errorMiddleware(target: string) {
  return async function* middleware<Req, Res>(call: ClientMiddlewareCall<Req, Res>, options: CallOptions) {
    let trailer: Metadata | undefined;
    const onTrailer = options.onTrailer;
    try {
      return yield* call.next(call.request, {
        ...options,
        onTrailer(t: Metadata) {
          trailer = t;
          onTrailer?.(t);
        },
      });
    } catch (err) {
      throw fromClientError(err, trailer, target);
    }
  };
}
