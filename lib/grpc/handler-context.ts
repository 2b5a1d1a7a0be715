/**
 * The context a gRPC handler receives: nice-grpc's call context, the request id, and the call's
 * logger, a pino child made the first time something logs through it (most calls never do: the
 * per-call lines are at debug, and a child with its bindings costs more than the rest of the
 * call's middleware).
 *
 * The lazy logger is an accessor on this class's prototype, shared by every call. As an accessor
 * of an object literal with fresh closures per call (as it once was), it gave every context a
 * hidden class of its own, which V8 allocates in the old generation; through it the closures, and
 * what they capture, outlived young-generation collections and were promoted, making every
 * scavenge copy megabytes under load.
 */
import type { CallContext } from 'nice-grpc';
import type { Logger } from 'pino';

export class HandlerContext {
  #child: Logger | undefined;
  readonly #root: Logger;
  readonly #bindings: { reqId: string; rpc: string };

  private constructor(
    readonly requestId: string,
    root: Logger,
    rpc: string,
  ) {
    this.#root = root;
    this.#bindings = { reqId: requestId, rpc };
  }

  /** nice-grpc's `context` with the request id and the lazy logger of the call `rpc`. */
  static of(context: CallContext, requestId: string, root: Logger, rpc: string): HandlerContext & CallContext {
    return Object.assign(new HandlerContext(requestId, root, rpc), context);
  }

  get logger(): Logger {
    return (this.#child ??= this.#root.child(this.#bindings));
  }

  set logger(logger: Logger) {
    this.#child = logger;
  }
}
