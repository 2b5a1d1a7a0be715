/**
 * Typed gRPC clients for internal hops: one channel per target with keepalive, the service
 * credential and request id in metadata, a per-call deadline, and gRPC errors mapped back to
 * AppError (once, here).
 */
import { Client as GrpcClient, Metadata as GrpcMetadata, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
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
  // Unary methods (every call on the request path) are wrapped directly: one promise per call
  // around nice-grpc's own method, instead of a middleware generator. Server-streaming methods
  // read grpc-js's call stream directly (streamReader). Methods that stream requests keep the
  // middleware.
  const direct = factory.create(definition, channel) as unknown as Record<string, AnyMethod>;
  const layered = factory.use(appClientMiddleware(target, token)).create(definition, channel) as unknown as Record<string, AnyMethod>;
  // A grpc-js client on the same channel, as nice-grpc makes its own (the address and credentials
  // are the channel's).
  const grpc = new GrpcClient('', null as unknown as ChannelCredentials, { channelOverride: channel });
  const client: Record<string, AnyMethod> = {};
  for (const [name, method] of Object.entries(methodsOf(definition))) {
    const raw = direct[name];
    if (!raw) continue;
    if (method.requestStream) client[name] = layered[name] ?? raw;
    else if (method.responseStream) client[name] = streamReader(grpc, method.path, method.codec, target, token);
    else client[name] = unary(raw, method.path, target, token);
  }
  return client as unknown as AppClient<D>;
}

type AnyMethod = (request: unknown, options?: CallOptions & DeadlineOptions) => unknown;

interface MethodShape {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  /** How grpc-js (de)serialises its messages. */
  codec: Codec;
}

interface Codec {
  serialize: (value: unknown) => Buffer;
  deserialize: (bytes: Buffer) => unknown;
}

interface TsProtoType {
  encode: (message: never) => { finish: () => Uint8Array };
  decode: (bytes: Uint8Array) => unknown;
  fromPartial?: (value: never) => unknown;
}

/** A Buffer over the same bytes (grpc-js frames Buffers; the encoders return Uint8Arrays). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Name → shape of each method, for the three definition styles nice-grpc accepts. */
function methodsOf(definition: CompatServiceDefinition): Record<string, MethodShape> {
  const out: Record<string, MethodShape> = {};
  if ('fullName' in definition && 'methods' in definition) {
    const ts = definition as {
      fullName: string;
      methods: Record<string, { name: string; requestStream: boolean; responseStream: boolean; requestType: TsProtoType; responseType: TsProtoType }>;
    };
    for (const [key, m] of Object.entries(ts.methods)) {
      // As nice-grpc encodes a ts-proto request: fromPartial first when the type has it.
      const { encode, fromPartial } = m.requestType;
      const decode = m.responseType.decode;
      const codec: Codec = {
        serialize: fromPartial
          ? (value) => asBuffer(encode(fromPartial(value as never) as never).finish())
          : (value) => asBuffer(encode(value as never).finish()),
        deserialize: (bytes) => decode(bytes),
      };
      out[key] = { path: `/${ts.fullName}/${m.name}`, requestStream: m.requestStream, responseStream: m.responseStream, codec };
    }
    return out;
  }
  // A grpc-js service definition: every method names its (de)serialisers.
  for (const [key, m] of Object.entries(
    definition as Record<string, Omit<MethodShape, 'codec'> & { requestSerialize: (v: unknown) => Uint8Array; responseDeserialize: (bytes: Buffer) => unknown }>,
  )) {
    const codec: Codec = { serialize: (value) => asBuffer(m.requestSerialize(value)), deserialize: m.responseDeserialize };
    out[key] = { path: m.path, requestStream: m.requestStream, responseStream: m.responseStream, codec };
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

/** A caller's abort, reported as nice-grpc reports it (AbortError → AppError `cancelled`). */
function abortError(): Error {
  const err = new Error('The operation has been aborted');
  err.name = 'AbortError';
  return err;
}

function toGrpcMetadata(metadata: Metadata): GrpcMetadata {
  const out = new GrpcMetadata();
  for (const [key, values] of metadata) {
    for (const value of values) out.add(key, typeof value === 'string' ? value : Buffer.from(value));
  }
  return out;
}

function fromGrpcMetadata(metadata: GrpcMetadata): Metadata {
  const out = Metadata();
  for (const key of Object.keys(metadata.getMap())) out.set(key, metadata.get(key) as string[]);
  return out;
}

/** Stop reading from the call (HTTP/2 flow control then holds the worker) past this many unread messages. */
const READ_AHEAD = 16;

/**
 * A server-streaming method read straight from grpc-js's call stream: one promise per message,
 * no async-generator layers, and no cancel once the call ended by itself (a cancel is only sent
 * for a call stopped early: `return()`/`throw()` before its end, the caller's signal, the
 * deadline). Like nice-grpc's own method, the call starts on the first `next()`; the deadline,
 * the credential and the error mapping are prepareCall/callError's, as for every other method.
 */
function streamReader(grpc: GrpcClient, path: string, codec: Codec, target: string, token: string | undefined): AnyMethod {
  return (request, options = {}) => ({
    [Symbol.asyncIterator](): AsyncIterator<unknown> {
      let call: PreparedCall | undefined;
      let stream: ReturnType<GrpcClient['makeServerStreamRequest']> | undefined;
      let onAbort: (() => void) | undefined;
      const queue: unknown[] = [];
      let paused = false;
      let ended = false;
      let failure: AppError | undefined;
      let waiting: { resolve: (r: IteratorResult<unknown>) => void; reject: (err: unknown) => void } | undefined;

      const finish = (): void => {
        if (ended) return;
        ended = true;
        if (call) {
          endCall(call);
          if (onAbort) call.next.signal?.removeEventListener('abort', onAbort);
        }
      };
      const mapped = (err: unknown, trailer: GrpcMetadata | undefined): AppError => {
        if (!call) return fromClientError(err, undefined, target);
        if (trailer) call.next.onTrailer?.(fromGrpcMetadata(trailer));
        const aborted = call.next.signal?.aborted === true;
        return callError(call, path, target, aborted ? abortError() : err);
      };
      const fail = (err: AppError): void => {
        finish();
        failure = err;
        const w = waiting;
        waiting = undefined;
        w?.reject(err);
      };
      const open = (): void => {
        call = prepareCall(token, options);
        const signal = call.next.signal;
        if (signal?.aborted) {
          fail(mapped(abortError(), undefined));
          return;
        }
        const s = grpc.makeServerStreamRequest(path, codec.serialize, codec.deserialize, request, toGrpcMetadata(call.next.metadata ?? Metadata()));
        stream = s;
        const { onHeader } = options;
        if (onHeader) s.on('metadata', (m: GrpcMetadata) => onHeader(fromGrpcMetadata(m)));
        // The trailer of a call that ended well reaches a caller that asked for it; an error's
        // trailer travels with the error (below).
        if (options.onTrailer) {
          s.on('status', (status: { code: number; metadata: GrpcMetadata }) => {
            if (status.code === Status.OK) call?.next.onTrailer?.(fromGrpcMetadata(status.metadata));
          });
        }
        s.on('data', (message: unknown) => {
          const w = waiting;
          if (w) {
            waiting = undefined;
            w.resolve({ done: false, value: message });
            return;
          }
          queue.push(message);
          if (queue.length >= READ_AHEAD && !paused) {
            paused = true;
            s.pause();
          }
        });
        s.on('end', () => {
          finish();
          const w = waiting;
          waiting = undefined;
          w?.resolve({ done: true, value: undefined });
        });
        s.on('error', (err: ServiceError) => {
          if (ended) return;
          const status = typeof err.code === 'number' && typeof err.details === 'string';
          fail(mapped(status ? new ClientError(path, err.code, err.details) : err, status ? err.metadata : undefined));
        });
        if (signal) {
          onAbort = () => s.cancel();
          signal.addEventListener('abort', onAbort, { once: true });
        }
      };
      const stop = (): void => {
        if (ended) return;
        stream?.cancel();
        finish();
      };
      return {
        next: () => {
          if (!call) {
            try {
              open();
            } catch (err) {
              fail(mapped(err, undefined));
            }
          }
          if (queue.length > 0) {
            const value = queue.shift();
            if (paused && queue.length < READ_AHEAD / 2) {
              paused = false;
              stream?.resume();
            }
            return Promise.resolve({ done: false, value });
          }
          if (failure) return Promise.reject(failure);
          if (ended) return Promise.resolve({ done: true, value: undefined });
          return new Promise((resolve, reject) => {
            waiting = { resolve, reject };
          });
        },
        return: (value?: unknown) => {
          stop();
          queue.length = 0;
          return Promise.resolve({ done: true, value });
        },
        throw: (err?: unknown) => {
          stop();
          queue.length = 0;
          return Promise.reject(call ? callError(call, path, target, err) : fromClientError(err, undefined, target));
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
