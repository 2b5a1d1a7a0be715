/**
 * Runs generations that arrive as messages on one long-lived stream (a dialled worker's
 * GenerateChannel, or a self-hosted worker's tunnel) on the local InferenceService, exactly as a
 * Generate call would run: the same handler, its deadline, its cancellation. Each call's events,
 * its error or its end go back through `send`, tagged with the call id the caller chose.
 */
import { Metadata, Status, type CallContext } from 'nice-grpc';
import type { Logger } from 'pino';
import type {
  CallFailure,
  ChannelGenerate,
  DeepPartial,
  GenerateChannelResponse,
  GenerateRequest,
  GenerateResponse,
} from '../../../../gen/xerotier/inference/v1/inference_service.js';
import { AppError, isAppError } from '../../../../lib/errors/app-error.js';
import { toServerError } from '../../../../lib/errors/grpc.js';
import { HandlerContext } from '../../../../lib/grpc/handler-context.js';
import type { GrpcServerMetrics } from '../../../../lib/metrics/grpc.js';
import type { RequestContext } from '../../../../lib/grpc/server.js';

/** A platform error as it travels on the stream: only platform errors pass as they are. */
export function callFailure(err: unknown): CallFailure {
  const app = isAppError(err) ? err : new AppError('internal', 'inference worker failed');
  return {
    kind: app.kind,
    code: app.code ?? '',
    message: app.kind === 'internal' ? 'inference worker failed' : app.message,
    param: app.param ?? '',
    retryAfterSeconds: app.retryAfterSeconds ?? 0,
  };
}

/** The Generate handler the calls run on. */
export type GenerateHandler = (
  request: GenerateRequest,
  context: CallContext & RequestContext,
) => AsyncIterable<DeepPartial<GenerateResponse>>;

/** A generation to start (a tunnel's carries no window: its calls send without waiting for credit). */
export type CallStart = Omit<ChannelGenerate, 'window'> & { window?: number | undefined };

/** What the runner sends back: a call's event, its error or its end. */
export type CallReport = DeepPartial<GenerateChannelResponse>;

/** The method generations are counted under, however they arrive. */
const GENERATE_RPC = '/xerotier.inference.v1.InferenceService/Generate';

const DEADLINE_PASSED = new AppError('timeout', 'generation deadline passed');

/**
 * One running call: its cancellation, whether its deadline passed (the timer's argument), and its
 * credit: how many more events it may send before the caller grants more.
 */
class RunningCall {
  readonly abort = new AbortController();
  timedOut = false;
  timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;

  constructor(public credit: number) {}

  grant(events: number): void {
    this.credit += events;
    this.wake?.();
  }

  stop(): void {
    this.abort.abort();
    this.wake?.();
  }

  /** Resolves once the call has credit again, or was stopped. */
  async waitForCredit(): Promise<void> {
    while (this.credit <= 0 && !this.abort.signal.aborted) {
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}

function deadlinePassed(call: RunningCall): void {
  call.timedOut = true;
  call.stop();
}

export class CallRunner {
  private readonly calls = new Map<string, RunningCall>();

  /**
   * @param peer what the calls' contexts report as their peer (the stream's caller)
   * @param rpc the name the calls' loggers carry
   * @param metrics when given, each call is counted as a Generate call with the status it would
   *   have ended with (`grpc_server_handled_total`), however it arrived
   */
  constructor(
    private readonly generate: GenerateHandler,
    private readonly logger: Logger,
    private readonly send: (message: CallReport) => void,
    private readonly peer: string,
    private readonly rpc: string,
    private readonly metrics?: GrpcServerMetrics | undefined,
  ) {}

  /** Calls running now. */
  get running(): number {
    return this.calls.size;
  }

  /** Starts one generation; its outcome goes out through `send`. */
  start(g: CallStart): void {
    void this.run(g);
  }

  /** Stops the call `callId` (no answer is sent for it). */
  cancel(callId: string): void {
    this.calls.get(callId)?.stop();
  }

  /** Lets the call `callId` send `events` more events. */
  credit(callId: string, events: number): void {
    this.calls.get(callId)?.grant(events);
  }

  /** Stops every running call (the stream is gone). */
  cancelAll(): void {
    for (const call of this.calls.values()) call.stop();
  }

  private async run(g: CallStart): Promise<void> {
    const { callId } = g;
    if (this.calls.has(callId)) {
      this.send({ callError: { callId, error: callFailure(new AppError('invalid_request', 'call id already in use')) } });
      return;
    }
    const call = new RunningCall(g.window ? g.window : Infinity);
    this.calls.set(callId, call);
    if (g.deadline) call.timer = setTimeout(deadlinePassed, Math.max(0, g.deadline.getTime() - Date.now()), call);
    const requestId = g.requestId || 'none';
    const context: CallContext = {
      signal: call.abort.signal,
      metadata: Metadata(),
      peer: this.peer,
      header: Metadata(),
      sendHeader: () => undefined,
      trailer: Metadata(),
    };
    const handlerContext: CallContext & RequestContext = HandlerContext.of(context, requestId, this.logger, this.rpc);
    let failed = false;
    let failure: unknown;
    try {
      if (!g.request) throw new AppError('invalid_request', 'generate without a request');
      for await (const response of this.generate(g.request, handlerContext)) {
        // Past the deadline the generation ends as cancelled; the caller is told why instead,
        // as a Generate caller learns it from the gRPC deadline (a timeout, not a cancel).
        if (call.timedOut) break;
        // Out of credit: the caller has not read what it was sent; wait (the generation waits
        // with it) until it grants more, as a Generate call waits on HTTP/2 flow control.
        if (call.credit <= 0) await call.waitForCredit();
        if (call.abort.signal.aborted) break;
        call.credit -= 1;
        this.send({ callEvent: { callId, response } });
      }
    } catch (err) {
      failed = true;
      failure = err;
    }
    // One answer per call: a call past its deadline says so, a cancelled call needs none.
    let code = Status.CANCELLED;
    if (call.timedOut) {
      code = Status.DEADLINE_EXCEEDED;
      this.send({ callError: { callId, error: callFailure(DEADLINE_PASSED) } });
    } else if (call.abort.signal.aborted) {
      // Cancelled by the caller (or the stream went away).
    } else if (failed) {
      code = toServerError(failure, Metadata()).code;
      this.send({ callError: { callId, error: callFailure(failure) } });
    } else {
      code = Status.OK;
      this.send({ callEnd: callId });
    }
    clearTimeout(call.timer);
    this.calls.delete(callId);
    this.metrics?.grpcServerHandledTotal.inc({ method: GENERATE_RPC, code: Status[code] });
  }
}
