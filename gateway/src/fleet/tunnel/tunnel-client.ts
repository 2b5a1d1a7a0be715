/**
 * The gateway's InferenceService client for a self-hosted worker, carried over its tunnel: each
 * Generate is a call id sent down the tunnel (with its deadline), whose events come back up tagged
 * with that id; leaving a call early (client gone, deadline, TTFT timeout) sends a cancel for it.
 * WatchStatus follows the status updates the worker sends. Errors are the AppErrors a dialled
 * worker's client would throw, so the fleet, the breaker and the failure policy treat both alike.
 */
import {
  GenerateRequest,
  type GenerateResponse,
  type WorkerStatus,
} from '../../../../gen/xerotier/inference/v1/inference_service.js';
import type { ConnectRequest, ConnectResponse, TunnelError } from '../../../../gen/xerotier/gateway/v1/worker_tunnel_service.js';
import { AppError, type ErrorKind } from '../../../../lib/errors/app-error.js';
import { REQUEST_ID_METADATA } from '../../../../lib/grpc/server.js';
import type { Worker } from '../fleet.js';
import { createAsyncQueue, type AsyncQueue } from './async-queue.js';

type CallItem = { event: GenerateResponse } | { end: true };

export interface TunnelClient {
  client: Worker['client'];
  /** Hands one message from the worker to its call, or to the status watchers. */
  receive(message: ConnectRequest): void;
  /** Ends every open call and status watch with `reason`; later calls fail with it at once. */
  close(reason: AppError): void;
  /** The worker's last reported status. */
  status(): WorkerStatus | undefined;
  /** Calls open now. */
  openCalls(): number;
}

const KINDS: readonly ErrorKind[] = [
  'invalid_request',
  'too_large',
  'unauthenticated',
  'permission_denied',
  'not_found',
  'rate_limited',
  'unavailable',
  'timeout',
  'cancelled',
  'internal',
];

/** A worker's error report as an AppError (bounded: the worker is the customer's machine). */
export function fromTunnelError(e: TunnelError | undefined): AppError {
  const kind = KINDS.find((k) => k === e?.kind) ?? 'internal';
  const message = kind === 'internal' ? 'inference worker failed' : (e?.message ?? '').slice(0, 500) || 'inference worker failed';
  return new AppError(kind, message, {
    code: e?.code && /^[a-z_]{1,64}$/.test(e.code) ? e.code : undefined,
    param: e?.param ? e.param.slice(0, 100) : undefined,
    retryAfterSeconds: e?.retryAfterSeconds ? Math.min(3600, Math.max(1, e.retryAfterSeconds)) : undefined,
  });
}

const cancelled = (): AppError => new AppError('cancelled', 'request cancelled');

export function createTunnelClient(send: (message: ConnectResponse) => void): TunnelClient {
  const calls = new Map<string, AsyncQueue<CallItem>>();
  const watchers = new Set<AsyncQueue<WorkerStatus>>();
  let closedWith: AppError | undefined;
  let latest: WorkerStatus | undefined;
  let nextId = 0;

  async function* generate(
    partial: Parameters<Worker['client']['generate']>[0],
    options: Parameters<Worker['client']['generate']>[1] = {},
  ): AsyncGenerator<GenerateResponse> {
    if (closedWith) throw closedWith;
    const callId = `c${++nextId}`;
    const inbox = createAsyncQueue<CallItem>();
    calls.set(callId, inbox);
    const { deadline, signal: callerSignal } = options;
    const deadlineAt = deadline === undefined ? undefined : deadline instanceof Date ? deadline : new Date(Date.now() + deadline);
    const timeout = new AbortController();
    let timedOut = false;
    const timer =
      deadlineAt === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            timeout.abort();
          }, Math.max(0, deadlineAt.getTime() - Date.now()));
    const signal = callerSignal ? AbortSignal.any([callerSignal, timeout.signal]) : timeout.signal;
    let done = false;
    try {
      send({
        generate: {
          callId,
          request: GenerateRequest.fromPartial(partial),
          deadline: deadlineAt,
          requestId: options.metadata?.get(REQUEST_ID_METADATA) ?? '',
        },
        cancel: undefined,
      });
      for (;;) {
        const item = await inbox.take(signal);
        if (item === undefined || 'end' in item) {
          done = true;
          return;
        }
        yield item.event;
      }
    } catch (err) {
      done = inbox.ended;
      if (timedOut) throw new AppError('timeout', 'inference worker did not answer in time', { cause: err });
      if (err instanceof Error && err.name === 'AbortError') throw cancelled();
      throw err;
    } finally {
      clearTimeout(timer);
      calls.delete(callId);
      // Left before the worker ended the call: stop it there.
      if (!done && !closedWith) send({ generate: undefined, cancel: callId });
    }
  }

  async function* watchStatus(
    _request: Parameters<Worker['client']['watchStatus']>[0],
    options: Parameters<Worker['client']['watchStatus']>[1] = {},
  ): AsyncGenerator<{ status: WorkerStatus }> {
    if (closedWith) throw closedWith;
    const updates = createAsyncQueue<WorkerStatus>();
    watchers.add(updates);
    try {
      if (latest) yield { status: latest };
      for (;;) {
        const status = await updates.take(options.signal);
        if (status === undefined) return;
        yield { status };
      }
    } catch (err) {
      if (err instanceof Error && err.name === 'AbortError') throw cancelled();
      throw err;
    } finally {
      watchers.delete(updates);
    }
  }

  const client = {
    generate,
    watchStatus,
    async getStatus() {
      if (closedWith) throw closedWith;
      return { status: latest };
    },
  } as unknown as Worker['client'];

  return {
    client,
    receive(message) {
      const status = message.hello ?? message.status;
      if (status) {
        latest = status;
        for (const w of watchers) w.push(status);
      } else if (message.callEvent?.response) {
        calls.get(message.callEvent.callId)?.push({ event: message.callEvent.response });
      } else if (message.callError) {
        calls.get(message.callError.callId)?.end(fromTunnelError(message.callError.error));
      } else if (message.callEnd !== undefined) {
        calls.get(message.callEnd)?.push({ end: true });
      }
    },
    close(reason) {
      closedWith ??= reason;
      for (const inbox of calls.values()) inbox.end(reason);
      for (const w of watchers) w.end(reason);
    },
    status: () => latest,
    openCalls: () => calls.size,
  };
}
