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
  const track = (requestId: string, principal: Principal, startedPerf: number): TrackedRequest => {
    const startTime = new Date(Date.now() - (performance.now() - startedPerf));
    let ttftMs = 0;
    let workerId = '';
    let model = principal.endpoint?.model ?? '';
    let tokens: TokenCounts = { promptTokens: 0, completionTokens: 0 };
    let completed = false;
    let waitingForEnd = false;
    let streamed = false;
    let outcomeOf: ((streamed: boolean, completed: boolean) => RequestOutcome) | undefined;
    let sent = false;
    let endTimer: NodeJS.Timeout | undefined;

    const emit = (): void => {
      if (sent || !outcomeOf) return;
      sent = true;
      clearTimeout(endTimer);
      const outcome = outcomeOf(streamed, completed);
      add({
        requestId,
        projectId: principal.project?.id ?? '',
        endpoint: principal.endpoint?.slug ?? '',
        keyId: principal.keyId,
        model,
        workerId,
        hardwarePool: principal.endpoint?.hardwarePool ?? '',
        tier: principal.endpoint?.tier ?? '',
        httpStatus: outcome.status,
        errorCode: outcome.errorCode,
        promptTokens: tokens.promptTokens,
        completionTokens: tokens.completionTokens,
        cachedTokens: tokens.cachedTokens ?? 0,
        timeToFirstTokenMs: ttftMs,
        durationMs: Math.round(performance.now() - startedPerf),
        startTime,
        cancelled: outcome.cancelled,
      });
    };
    return {
      firstToken(start) {
        ttftMs = Math.max(1, Math.round(performance.now() - startedPerf));
        workerId = start.workerId;
        if (start.model) model = start.model;
        waitingForEnd = true;
        streamed = true;
      },
      end(counts, done) {
        tokens = counts;
        completed = done;
        waitingForEnd = false;
        emit();
      },
      close(outcome) {
        outcomeOf = outcome;
        if (!waitingForEnd) emit();
        else endTimer = setTimeout(emit, END_WAIT_MS).unref();
      },
    };
  };

  return {
    track,
    begin(res, principal, startedPerf) {
      const locals = res.locals as RequestLocals;
      const tracked = track(locals.requestId, principal, startedPerf);
      // A response emits 'close' once: a plain listener, without the wrapper \`once\` adds.
      res.on('close', () =>
        tracked.close((streamed, completed) => {
          const cancelled = !res.writableFinished;
          const status = cancelled && !res.headersSent ? 499 : res.statusCode;
          // A stream that started (200) and ended without its final result failed or was cut.
          const errorCode = locals.errorCode ?? (!cancelled && status === 200 && streamed && !completed ? 'stream_interrupted' : '');
          return { status, errorCode, cancelled };
        }),
      );
      return tracked;
    },
  };
}
