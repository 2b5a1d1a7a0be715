/**
 * Typed gRPC clients for internal hops: one channel per target with keepalive, the service
 * credential and request id in metadata, a per-call deadline, and gRPC errors mapped back to
 * AppError (once, here).
 */
import { Metadata as GrpcMetadata, type StatusObject } from '@grpc/grpc-js';
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
import type { CancelListener, CancelSignal } from './call-cancel.js';
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

/** What every call may take beyond nice-grpc's own options. */
export interface AppCallOptions {
  /** Per-call deadline: a Date, or milliseconds from now. The call is cancelled when it passes. */
  deadline?: Date | number | undefined;
  /**
   * Cancels the call, like `signal`, without needing an AbortSignal (call-cancel.ts); when both
   * are given, this one is used.
   */
  cancel?: CancelSignal | undefined;
}

export type AppClient<D extends CompatServiceDefinition> = Client<D, AppCallOptions>;

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
  // read the channel's call directly (streamReader). Methods that stream requests keep the
  // middleware.
  const direct = factory.create(definition, channel) as unknown as Record<string, AnyMethod>;
  const layered = factory.use(appClientMiddleware(target, token)).create(definition, channel) as unknown as Record<string, AnyMethod>;
  const client: Record<string, AnyMethod> = {};
  for (const [name, method] of Object.entries(methodsOf(definition))) {
    const raw = direct[name];
    if (!raw) continue;
    if (method.requestStream) client[name] = layered[name] ?? raw;
    else if (method.responseStream) client[name] = streamReader({ channel, path: method.path, codec: method.codec, target, token });
    else client[name] = unary(raw, method.path, target, token);
  }
  return client as unknown as AppClient<D>;
}

type AnyMethod = (request: unknown, options?: CallOptions & AppCallOptions) => unknown;

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
  caller: CancelSignal | undefined;
  followCaller: CancelListener | undefined;
}

function prepareCall(token: string | undefined, options: CallOptions & AppCallOptions): PreparedCall {
  const { deadline, onTrailer } = options;
  const caller = cancellationOf(options);
  // The call's own metadata (callOptions makes one per call) takes the credential: no copy.
  const metadata = options.metadata ?? Metadata();
  if (token) metadata.set(SERVICE_TOKEN_METADATA, token);
  const call: PreparedCall = { next: { metadata }, trailer: undefined, timedOut: false, timer: undefined, caller, followCaller: undefined };
  if (options.onHeader) call.next.onHeader = options.onHeader;
  call.next.onTrailer = (t: Metadata) => {
    call.trailer = t;
    onTrailer?.(t);
  };
  if (deadline === undefined && (caller === undefined || caller instanceof AbortSignal)) {
    if (caller) call.next.signal = caller;
    return call;
  }
  // One controller for the deadline and the caller's cancellation (a listener, removed in
  // endCall, rather than a per-call AbortSignal.any): nice-grpc takes only an AbortSignal.
  const controller = new AbortController();
  if (deadline !== undefined) {
    const ms = deadline instanceof Date ? deadline.getTime() - Date.now() : deadline;
    call.timer = setTimeout(() => {
      call.timedOut = true;
      controller.abort();
    }, Math.max(0, ms));
  }
  if (caller?.aborted) controller.abort(caller.reason);
  else if (caller) {
    const follow: CancelListener = { handleEvent: () => controller.abort(caller.reason) };
    call.followCaller = follow;
    caller.addEventListener('abort', follow, { once: true });
  }
  call.next.signal = controller.signal;
  return call;
}

/** What cancels a call: its `cancel` option, else its `signal`. */
export function cancellationOf(options: CallOptions & AppCallOptions): CancelSignal | undefined {
  return options.cancel ?? options.signal;
}

function endCall(call: PreparedCall): void {
  clearTimeout(call.timer);
  if (call.followCaller) call.caller?.removeEventListener('abort', call.followCaller);
}

/** gRPC errors back to AppError with the server's `x-error-*` trailers; a passed deadline is DEADLINE_EXCEEDED. */
function callError(call: PreparedCall, path: string, target: string, err: unknown): AppError {
  return mapCallError(err, call.trailer, call.timedOut, path, target);
}

/** A call's error as AppError; a call stopped by its own deadline timer is DEADLINE_EXCEEDED. */
function mapCallError(err: unknown, trailer: Metadata | undefined, timedOut: boolean, path: string, target: string): AppError {
  return fromClientError(timedOut ? new ClientError(path, Status.DEADLINE_EXCEEDED, 'Deadline exceeded') : err, trailer, target);
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

/** What every call of one server-streaming method shares. */
interface StreamMethod {
  channel: Channel;
  path: string;
  codec: Codec;
  target: string;
  token: string | undefined;
}

/** grpc-js's own call below its client layer (a ResolvingCall): what Channel.createCall returns. */
type ChannelCall = ReturnType<Channel['createCall']>;

/** The write context of the one request message: no flags. */
const NO_WRITE_FLAGS = Object.freeze({});

/**
 * A server-streaming method read straight from the call grpc-js's channel makes (the call its
 * client API wraps): one promise per message, no stream, interceptor or caller-stack layers, and
 * no cancel once the call ended by itself (a cancel is only sent for a call stopped early:
 * `return()`/`throw()` before its end, the caller's signal, the deadline). Like nice-grpc's own
 * method, the call starts on the first `next()`; the credential, the deadline and the error
 * mapping are those of every other method (prepareCall/callError).
 */
function streamReader(method: StreamMethod): AnyMethod {
  return (request, options = {}) => ({
    [Symbol.asyncIterator]: (): AsyncIterator<unknown> => new ServerStream(method, request, options),
  });
}

/**
 * What grpc-js's resolving call (the call `Channel.createCall` returns) keeps of a message written
 * before its channel-side call exists: the message, as `pendingMessage`, handed on once that call
 * is made (a few promise turns after `start`) and never dropped by grpc-js itself.
 */
interface PendingHolder {
  pendingMessage?: unknown;
  child?: unknown;
}

/**
 * Drops the resolving call's reference to the request once its channel-side call has it: the
 * prompt's bytes are then not kept for as long as the stream is open. A call still waiting for its
 * channel (not connected yet) keeps it until it is sent.
 */
function dropPendingRequest(call: ChannelCall): void {
  const held = call as unknown as PendingHolder;
  if (held.child != null && held.pendingMessage != null) held.pendingMessage = null;
}

/** The deadline timer's callback (the stream is its argument: no closure per call). */
function expireStream(stream: ServerStream): void {
  stream.expire();
}

/**
 * One server-streaming call: the iterator its caller reads, and the listener grpc-js reports the
 * call's events to. An open stream holds it for as long as it waits, so its methods are shared and
 * it keeps only what the rest of the call needs (the request and the options are dropped once the
 * call started).
 */
class ServerStream implements AsyncIterator<unknown> {
  private call: ChannelCall | undefined;
  private request: unknown;
  private options: (CallOptions & AppCallOptions) | undefined;
  private signal: CancelSignal | undefined;
  private onHeader: ((header: Metadata) => void) | undefined;
  private onTrailer: ((trailer: Metadata) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timedOut = false;
  private readonly queue: unknown[] = [];
  /** A startRead() is outstanding: grpc-js delivers one message per startRead(). */
  private reading = false;
  /** The call ended (its status arrived, or it was stopped): no more messages. */
  private ended = false;
  private failure: AppError | undefined;
  private resolveWaiting: ((result: IteratorResult<unknown>) => void) | undefined;
  private rejectWaiting: ((err: unknown) => void) | undefined;

  constructor(
    private readonly method: StreamMethod,
    request: unknown,
    options: CallOptions & AppCallOptions,
  ) {
    this.request = request;
    this.options = options;
  }

  next(): Promise<IteratorResult<unknown>> {
    if (this.options) this.open(this.options);
    if (this.queue.length > 0) {
      const value = this.queue.shift();
      if (!this.reading && !this.ended && this.queue.length < READ_AHEAD / 2) this.read();
      return Promise.resolve({ done: false, value });
    }
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => {
      this.resolveWaiting = resolve;
      this.rejectWaiting = reject;
    });
  }

  return(value?: unknown): Promise<IteratorResult<unknown>> {
    this.stop();
    return Promise.resolve({ done: true, value });
  }

  throw(err?: unknown): Promise<IteratorResult<unknown>> {
    this.stop();
    return Promise.reject(this.callError(err));
  }

  // The listener grpc-js reports the call's events to.

  onReceiveMetadata(metadata: GrpcMetadata): void {
    if (this.call) dropPendingRequest(this.call);
    this.onHeader?.(fromGrpcMetadata(metadata));
  }

  onReceiveMessage(bytes: Buffer): void {
    this.reading = false;
    if (this.ended) return;
    let message: unknown;
    try {
      message = this.method.codec.deserialize(bytes);
    } catch (err) {
      // As grpc-js's client reports a message it cannot parse (the call ends with this status).
      this.call?.cancelWithStatus(Status.INTERNAL, `Response message parsing error: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    const resolve = this.resolveWaiting;
    if (resolve) {
      this.resolveWaiting = this.rejectWaiting = undefined;
      resolve({ done: false, value: message });
    } else {
      this.queue.push(message);
    }
    if (this.queue.length < READ_AHEAD) this.read();
  }

  onReceiveStatus(status: StatusObject): void {
    if (this.ended) return;
    if (status.code === Status.OK) {
      this.finish();
      // The trailer of a call that ended well reaches a caller that asked for it; an error's
      // trailer travels with the error.
      this.onTrailer?.(fromGrpcMetadata(status.metadata));
      this.settleWaiting();
      return;
    }
    this.fail(new ClientError(this.method.path, status.code, status.details), fromGrpcMetadata(status.metadata));
  }

  /** The caller's signal aborted (the stream listens with itself: no closure per call). */
  handleEvent(): void {
    this.call?.cancelWithStatus(Status.CANCELLED, 'Cancelled on client');
  }

  expire(): void {
    this.timer = undefined;
    this.timedOut = true;
    this.call?.cancelWithStatus(Status.CANCELLED, 'Cancelled on client');
  }

  private open(options: CallOptions & AppCallOptions): void {
    this.options = undefined;
    const { deadline } = options;
    const signal = cancellationOf(options);
    this.onHeader = options.onHeader;
    this.onTrailer = options.onTrailer;
    if (signal?.aborted) {
      this.fail(abortError(), undefined);
      return;
    }
    const request = this.request;
    this.request = undefined;
    const { channel, path, codec, token } = this.method;
    try {
      // The call's own metadata (callOptions makes one per call) takes the credential.
      const metadata = toGrpcMetadata(options.metadata ?? Metadata());
      if (token) metadata.set(SERVICE_TOKEN_METADATA, token);
      const call = channel.createCall(path, Infinity, undefined, null, undefined);
      this.call = call;
      if (deadline !== undefined) {
        const ms = deadline instanceof Date ? deadline.getTime() - Date.now() : deadline;
        this.timer = setTimeout(expireStream, Math.max(0, ms), this);
      }
      if (signal) {
        this.signal = signal;
        signal.addEventListener('abort', this, { once: true });
      }
      call.start(metadata, this);
      let bytes: Buffer;
      try {
        bytes = codec.serialize(request);
      } catch (err) {
        // As grpc-js's client reports a message it cannot serialise.
        call.cancelWithStatus(Status.INTERNAL, `Request message serialization failure: ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
      // Written at once, the request leaves with the call's headers (one write, one wake-up of
      // the worker) as soon as grpc-js has made the call's channel-side call, a few promise turns
      // from here. Until then the resolving call holds it as its `pendingMessage`, which it never
      // drops: the first response header (the channel-side call exists by then) drops it.
      call.sendMessageWithContext(NO_WRITE_FLAGS, bytes);
      call.halfClose();
      this.read();
    } catch (err) {
      this.fail(err, undefined);
    }
  }

  private read(): void {
    this.reading = true;
    this.call?.startRead();
  }

  private stop(): void {
    this.queue.length = 0;
    if (this.ended) return;
    this.options = undefined;
    this.call?.cancelWithStatus(Status.CANCELLED, 'Cancelled on client');
    this.finish();
    this.settleWaiting();
  }

  private finish(): void {
    this.ended = true;
    this.request = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.signal?.removeEventListener('abort', this);
    this.signal = undefined;
  }

  /** Ends a `next()` still waiting (the call is over): done. */
  private settleWaiting(): void {
    const resolve = this.resolveWaiting;
    this.resolveWaiting = this.rejectWaiting = undefined;
    resolve?.({ done: true, value: undefined });
  }

  private fail(err: unknown, trailer: Metadata | undefined): void {
    // A call stopped by the caller's signal or the deadline is reported as such, not as the
    // CANCELLED status the cancel produced.
    const stopped = this.timedOut || this.signal?.aborted === true;
    if (trailer) this.onTrailer?.(trailer);
    this.finish();
    this.failure = mapCallError(stopped ? abortError() : err, trailer, this.timedOut, this.method.path, this.method.target);
    const reject = this.rejectWaiting;
    this.resolveWaiting = this.rejectWaiting = undefined;
    reject?.(this.failure);
  }

  private callError(err: unknown): AppError {
    return mapCallError(err, undefined, this.timedOut, this.method.path, this.method.target);
  }
}

/**
 * Per-call options: request id propagation, cancellation (an AbortSignal, or a cheaper
 * CancelSignal such as CallCancel) and deadline (Date or ms from now).
 */
export function callOptions(
  requestId: string,
  signal?: AbortSignal | CancelSignal,
  deadline?: Date | number,
): CallOptions & AppCallOptions {
  const options: CallOptions & AppCallOptions = { metadata: Metadata({ [REQUEST_ID_METADATA]: requestId }) };
  if (signal instanceof AbortSignal) options.signal = signal;
  else if (signal) options.cancel = signal;
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
    call: ClientMiddlewareCall<Req, Res, AppCallOptions>,
    options: CallOptions & AppCallOptions,
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
