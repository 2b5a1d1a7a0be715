/**
 * One usage record per request, built along the request's life and handed to the recorder once
 * it is complete: when the response has closed (status known) and, if a worker produced a first
 * token, when the handler has reported the final token counts (`end`). Requests that never got
 * past authentication have no tracker and no record.
 */
import type { Response } from 'express';
import type { Principal } from '../../../gen/xerotier/auth/v1/auth_service.js';
import type { UsageRecord } from '../../../gen/xerotier/ledger/v1/ledger_service.js';
import type { RequestLocals } from '../request-context.js';

export interface TokenCounts {
  promptTokens: number;
  completionTokens: number;
  cachedTokens?: number | undefined;
}

export interface RequestUsage {
  /** The worker's first token arrived (its worker id and model). */
  firstToken(start: { workerId: string; model: string }): void;
  /** Final counts, as shown to the client and settled with quota; `completed` = the engine's final result arrived. */
  end(tokens: TokenCounts, completed: boolean): void;
}

/** How a request ended, as its transport saw it. */
export interface RequestOutcome {
  /** HTTP status, or the HTTP status of the gRPC error's kind (200 for a finished gRPC call). */
  status: number;
  errorCode: string;
  cancelled: boolean;
}

export interface TrackedRequest extends RequestUsage {
  /** The transport is done with the request; the record goes out once `end` has also run (if a first token came). */
  close(outcome: (streamed: boolean, completed: boolean) => RequestOutcome): void;
}

export interface UsageTracking {
  /** Starts tracking an authenticated HTTP request; `startedPerf` is its arrival (performance.now()). */
  begin(res: Response, principal: Principal, startedPerf: number): RequestUsage;
  /** The same for any transport: the caller reports how the request ended with `close`. */
  track(requestId: string, principal: Principal, startedPerf: number): TrackedRequest;
}

/** If a handler never reports its counts after a first token, the record still goes out then. */
const END_WAIT_MS = 60_000;

export function createUsageTracking(add: (record: UsageRecord) => void): UsageTracking {
  const track = (requestId: string, principal: Principal, startedPerf: number): Tracked =>
    new Tracked(add, requestId, principal, startedPerf);

  return {
    track,
    begin(res, principal, startedPerf) {
      const locals = res.locals as RequestLocals;
      const tracked = track(locals.requestId, principal, startedPerf);
      tracked.response = res;
      (res as TrackedResponse)[TRACKED] = tracked;
      // A response emits 'close' once: a plain listener, without the wrapper `once` adds.
      res.on('close', onResponseClose);
      return tracked;
    },
  };
}

/** The tracker of an HTTP request, kept on its response for the `close` listener. */
const TRACKED = Symbol('usage tracker');

type TrackedResponse = Response & { [TRACKED]?: Tracked };

/** The `close` listener of every tracked response: one function (Node calls it with the response as `this`). */
function onResponseClose(this: TrackedResponse): void {
  this[TRACKED]?.close(httpOutcome);
}

/** How an HTTP request ended, read from its response when it closed. */
function httpOutcome(this: Tracked, streamed: boolean, completed: boolean): RequestOutcome {
  const res = this.response as Response;
  const cancelled = !res.writableFinished;
  const status = cancelled && !res.headersSent ? 499 : res.statusCode;
  // A stream that started (200) and ended without its final result failed or was cut.
  const errorCode = (res.locals as RequestLocals).errorCode ?? (!cancelled && status === 200 && streamed && !completed ? 'stream_interrupted' : '');
  return { status, errorCode, cancelled };
}

/** The counts before `end` (never written to: `end` replaces the reference). */
const NO_TOKENS: TokenCounts = Object.freeze({ promptTokens: 0, completionTokens: 0 });

/** The end-wait timer's callback (module-level: the tracker is its argument, no closure). */
function emitLater(tracked: Tracked): void {
  tracked.emit();
}

/**
 * The usage record of one request as it is built. An open stream holds it for as long as it
 * waits for tokens: one object with its fields, its methods shared on the prototype.
 */
class Tracked implements TrackedRequest {
  /** Date.now() at arrival (the record's Date is made when it is sent: one object fewer per stream). */
  private readonly startTime: number;
  private ttftMs = 0;
  private workerId = '';
  private model: string;
  private tokens: TokenCounts = NO_TOKENS;
  private completed = false;
  private waitingForEnd = false;
  private streamed = false;
  private outcomeOf: ((this: Tracked, streamed: boolean, completed: boolean) => RequestOutcome) | undefined;
  private sent = false;
  private endTimer: NodeJS.Timeout | undefined;
  /** The HTTP response, for an HTTP request (read by its outcome when it closed). */
  response: Response | undefined;

  constructor(
    private readonly add: (record: UsageRecord) => void,
    private readonly requestId: string,
    private readonly principal: Principal,
    private readonly startedPerf: number,
  ) {
    this.startTime = Date.now() - (performance.now() - startedPerf);
    this.model = principal.endpoint?.model ?? '';
  }

  firstToken(start: { workerId: string; model: string }): void {
    this.ttftMs = Math.max(1, Math.round(performance.now() - this.startedPerf));
    this.workerId = start.workerId;
    if (start.model) this.model = start.model;
    this.waitingForEnd = true;
    this.streamed = true;
  }

  end(counts: TokenCounts, done: boolean): void {
    this.tokens = counts;
    this.completed = done;
    this.waitingForEnd = false;
    this.emit();
  }

  close(outcome: (this: Tracked, streamed: boolean, completed: boolean) => RequestOutcome): void {
    this.outcomeOf = outcome;
    if (!this.waitingForEnd) this.emit();
    else this.endTimer = setTimeout(emitLater, END_WAIT_MS, this).unref();
  }

  emit(): void {
    if (this.sent || !this.outcomeOf) return;
    this.sent = true;
    clearTimeout(this.endTimer);
    const outcome = this.outcomeOf.call(this, this.streamed, this.completed);
    const { principal, tokens } = this;
    this.add({
      requestId: this.requestId,
      projectId: principal.project?.id ?? '',
      endpoint: principal.endpoint?.slug ?? '',
      keyId: principal.keyId,
      model: this.model,
      workerId: this.workerId,
      hardwarePool: principal.endpoint?.hardwarePool ?? '',
      tier: principal.endpoint?.tier ?? '',
      httpStatus: outcome.status,
      errorCode: outcome.errorCode,
      promptTokens: tokens.promptTokens,
      completionTokens: tokens.completionTokens,
      cachedTokens: tokens.cachedTokens ?? 0,
      timeToFirstTokenMs: this.ttftMs,
      durationMs: Math.round(performance.now() - this.startedPerf),
      startTime: new Date(this.startTime),
      cancelled: outcome.cancelled,
    });
  }
}
