/**
 * The caller's gRPC deadline, made visible to the handlers. grpc-js parses `grpc-timeout` and
 * enforces it, but nice-grpc's call context does not expose it; this server interceptor copies it
 * into the call's metadata under a gateway-owned key (always overwritten, so a caller cannot set
 * it). The chat handler caps the tier's request timeout with it and propagates the result to the
 * worker.
 */
import { ServerInterceptingCall, type ServerInterceptor } from '@grpc/grpc-js';
import type { Metadata } from 'nice-grpc';

const CALLER_DEADLINE = 'x-xerotier-caller-deadline-ms';

export const callerDeadlineInterceptor: ServerInterceptor = (_method, call) =>
  new ServerInterceptingCall(call, {
    start(next) {
      next({
        onReceiveMetadata(metadata, nextMetadata) {
          metadata.remove(CALLER_DEADLINE);
          const deadline = Number(call.getDeadline());
          if (Number.isFinite(deadline)) metadata.set(CALLER_DEADLINE, String(deadline));
          nextMetadata(metadata);
        },
      });
    },
  });

/**
 * The gateway ends a call this long before the caller's deadline, so that its own
 * DEADLINE_EXCEEDED (with the error code and details) usually arrives before grpc-js's bare one.
 */
const ANSWER_MARGIN_MS = 25;

/** The caller's deadline (less the answer margin), or undefined when the call has none. */
export function callerDeadline(metadata: Metadata): Date | undefined {
  const ms = Number(metadata.get(CALLER_DEADLINE));
  return Number.isFinite(ms) && ms > 0 ? new Date(ms - ANSWER_MARGIN_MS) : undefined;
}
