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
import type { AppError } from '../errors/app-error.js';
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
  const { target, serviceToken: token } = options;
  const factory = createClientFactory();
  // Unary and server-streaming methods (every call on the request path) are wrapped directly: one
  // promise per call or per message around nice-grpc's own method, instead of a middleware
  // generator every message passes through. Methods that stream requests keep the middleware.
  const direct = factory.create(definition, channel) as unknown as Record<string, AnyMethod>;
  const layered = factory.use(appClientMiddleware(target, token)).create(definition, channel) as unknown as Record<string, AnyMethod>;
  const client: Record<string, AnyMethod> = {};
  for (const [name, method] of Object.entries(methodsOf(definition))) {
    const raw = direct[name];
    if (!raw) continue;
    if (method.requestStream) client[name] = layered[name] ?? raw;
    else if (method.responseStream) client[name] = serverStreaming(raw, method.path, target, token);
    else client[name] = unary(raw, method.path, target, token);
  }
  return client as unknown as AppClient<D>;
}

type AnyMethod = (request: unknown, options?: CallOptions & DeadlineOptions) => unknown;

interface MethodShape {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
}

/** Name → shape of each method, for the three definition styles nice-grpc accepts. */
function methodsOf(definition: CompatServiceDefinition): Record<string, MethodShape> {
  const out: Record<string, MethodShape> = {};
  if ('fullName' in definition && 'methods' in definition) {
    const ts = definition as { fullName: string; methods: Record<string, { name: string; requestStream: boolean; responseStream: boolean }> };
    for (const [key, m] of Object.entries(ts.methods)) {
      out[key] = { path: `/${ts.fullName}/${m.name}`, requestStream: m.requestStream, responseStream: m.responseStream };
    }
    return out;
  }
  for (const [key, m] of Object.entries(definition as Record<string, MethodShape>)) {
    out[key] = { path: m.path, requestStream: m.requestStream, responseStream: m.responseStream };
  }
  return out;
}

/** One call's state: what goes to nice-grpc, the trailer seen, the deadline timer. */
interface PreparedCall {
  next: CallOptions;
  trailer: Metadata | undefined;
  timedOut: boolean;
  timer: NodeJS.Timeout | undefined;
  callerSignal: AbortSignal | undefined;
  followCaller: (() => void) | undefined;
}

function prepareCall(token: string | undefined, options: CallOptions & DeadlineOptions): PreparedCall {
  const { deadline, signal: callerSignal, onTrailer } = options;
  // The call's own metadata (callOptions makes one per call) takes the credential: no copy.
  const metadata = options.metadata ?? Metadata();
  if (token) metadata.set(SERVICE_TOKEN_METADATA, token);
  const call: PreparedCall = { next: { metadata }, trailer: undefined, timedOut: false, timer: undefined, callerSignal, followCaller: undefined };
  if (options.onHeader) call.next.onHeader = options.onHeader;
  call.next.onTrailer = (t: Metadata) => {
    call.trailer = t;
    onTrailer?.(t);
  };
  if (deadline === undefined) {
    if (callerSignal) call.next.signal = callerSignal;
    return call;
  }
  // One controller for the deadline and the caller's signal (a listener, removed in endCall,
  // rather than a per-call AbortSignal.any).
  const controller = new AbortController();
  const ms = deadline instanceof Date ? deadline.getTime() - Date.now() : deadline;
  call.timer = setTimeout(() => {
    call.timedOut = true;
    controller.abort();
  }, Math.max(0, ms));
  if (callerSignal?.aborted) controller.abort(callerSignal.reason);
  else if (callerSignal) {
    const follow = (): void => controller.abort(callerSignal.reason);
    call.followCaller = follow;
    callerSignal.addEventListener('abort', follow, { once: true });
  }
  call.next.signal = controller.signal;
  return call;
}

function endCall(call: PreparedCall): void {
  clearTimeout(call.timer);
  if (call.followCaller) call.callerSignal?.removeEventListener('abort', call.followCaller);
}

/** gRPC errors back to AppError with the server's `x-error-*` trailers; a passed deadline is DEADLINE_EXCEEDED. */
function callError(call: PreparedCall, path: string, target: string, err: unknown): AppError {
  const cause = call.timedOut ? new ClientError(path, Status.DEADLINE_EXCEEDED, 'Deadline exceeded') : err;
  return fromClientError(cause, call.trailer, target);
}

function unary(raw: AnyMethod, path: string, target: string, token: string | undefined): AnyMethod {
  return (request, options = {}) => {
    const call = prepareCall(token, options);
    return (raw(request, call.next) as Promise<unknown>).then(
      (response) => {
        endCall(call);
        return response;
      },
      (err: unknown) => {
        endCall(call);
        throw callError(call, path, target, err);
      },
    );
  };
}

/** The call starts on the first `next()`, like nice-grpc's own (generator-based) methods. */
function serverStreaming(raw: AnyMethod, path: string, target: string, token: string | undefined): AnyMethod {
  return (request, options = {}) => ({
    [Symbol.asyncIterator](): AsyncIterator<unknown> {
      let call: PreparedCall | undefined;
      let inner: AsyncIterator<unknown> | undefined;
      let ended = false;
      const end = (): void => {
        if (ended || !call) return;
        ended = true;
        endCall(call);
      };
      const fail = (err: unknown): never => {
        end();
        throw call ? callError(call, path, target, err) : fromClientError(err, undefined, target);
      };
      const settle = (result: IteratorResult<unknown>): IteratorResult<unknown> => {
        if (result.done) end();
        return result;
      };
      const open = (): AsyncIterator<unknown> => {
        call = prepareCall(token, options);
        return (raw(request, call.next) as AsyncIterable<unknown>)[Symbol.asyncIterator]();
      };
      return {
        next: () => {
          try {
            inner ??= open();
          } catch (err) {
            return Promise.resolve().then(() => fail(err));
          }
          return inner.next().then(settle, fail);
        },
        return: (value?: unknown) => {
          if (!inner) {
            ended = true;
            return Promise.resolve({ done: true, value });
          }
          const returned = inner.return ? inner.return(value) : Promise.resolve({ done: true as const, value });
          return returned.then((r) => {
            end();
            return r;
          }, fail);
        },
        throw: (err?: unknown) => {
          if (!inner?.throw) return Promise.resolve().then(() => fail(err));
          return inner.throw(err).then(settle, fail);
        },
      };
    },
  });
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
    const prepared = prepareCall(token, options);
    try {
      return yield* call.next(call.request, prepared.next);
    } catch (err) {
      throw callError(prepared, call.method.path, target, err);
    } finally {
      endCall(prepared);
    }
  };
}
