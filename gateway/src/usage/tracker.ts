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

export interface UsageTracking {
  /** Starts tracking an authenticated request; `startedPerf` is its arrival (performance.now()). */
  begin(res: Response, principal: Principal, startedPerf: number): RequestUsage;
}

/** If a handler never reports its counts after a first token, the record still goes out then. */
const END_WAIT_MS = 60_000;

export function createUsageTracking(add: (record: UsageRecord) => void): UsageTracking {
  return {
    begin(res, principal, startedPerf) {
      const locals = res.locals as RequestLocals;
      const startTime = new Date(Date.now() - (performance.now() - startedPerf));
      let ttftMs = 0;
      let workerId = '';
      let model = principal.endpoint?.model ?? '';
      let tokens: TokenCounts = { promptTokens: 0, completionTokens: 0 };
      let completed = false;
      let waitingForEnd = false;
      let streamed = false;
      let closed = false;
      let sent = false;

      const emit = (): void => {
        if (sent) return;
        sent = true;
        const cancelled = !res.writableFinished;
        const status = cancelled && !res.headersSent ? 499 : res.statusCode;
        // A stream that started (200) and ended without its final result failed or was cut.
        const errorCode = locals.errorCode ?? (!cancelled && status === 200 && streamed && !completed ? 'stream_interrupted' : '');
        add({
          requestId: locals.requestId,
          projectId: principal.project?.id ?? '',
          endpoint: principal.endpoint?.slug ?? '',
          keyId: principal.keyId,
          model,
          workerId,
          hardwarePool: principal.endpoint?.hardwarePool ?? '',
          tier: principal.endpoint?.tier ?? '',
          httpStatus: status,
          errorCode,
          promptTokens: tokens.promptTokens,
          completionTokens: tokens.completionTokens,
          cachedTokens: tokens.cachedTokens ?? 0,
          timeToFirstTokenMs: ttftMs,
          durationMs: Math.round(performance.now() - startedPerf),
          startTime,
          cancelled,
        });
      };

      let endTimer: NodeJS.Timeout | undefined;
      res.once('close', () => {
        closed = true;
        if (!waitingForEnd) emit();
        else endTimer = setTimeout(emit, END_WAIT_MS).unref();
      });
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
          clearTimeout(endTimer);
          if (closed) emit();
        },
      };
    },
  };
}
