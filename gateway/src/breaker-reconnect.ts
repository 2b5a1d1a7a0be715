/**
 * An open breaker closes as soon as its upstream's channel connects again.
 *
 * A breaker that opened because its upstream went away (a crash, a restart) would otherwise answer
 * `circuit_open` for its whole reset time after the upstream is back: a 300 ms restart of auth cost
 * every key without a cached authentication up to GATEWAY_BREAKER_RESET_MS of 503s. While the breaker
 * is open no call reaches the channel, so nothing would make it reconnect either: this watcher asks
 * the channel to connect whenever it sits idle or failed with the breaker open, and closes the
 * breaker on the transition to READY (a completed HTTP/2 handshake with the upstream process).
 *
 * A breaker that opened while the channel stayed connected (an upstream that answers, but slowly or
 * with errors) sees no such transition and waits out its reset time and half-open probe as before.
 * If the upstream fails again after the reconnect, the failures still in the breaker's rolling
 * window open it again at the next failure.
 */
import { connectivityState, type Channel } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Breaker } from './breaker.js';

/** Starts watching; the watch ends when the channel is closed. */
export function closeBreakerOnReconnect(channel: Channel, breaker: Breaker, logger: Logger): void {
  let last = channel.getConnectivityState(false);
  const watch = (): void => {
    channel.watchConnectivityState(last, Infinity, () => {
      const state = channel.getConnectivityState(false);
      const previous = last;
      last = state;
      if (state === connectivityState.SHUTDOWN) return;
      const open = breaker.state() !== 'closed';
      if (open && state === connectivityState.READY && previous !== connectivityState.READY) {
        logger.info({ breaker: breaker.name }, 'upstream connected again; closing its breaker');
        breaker.reset();
      } else if (open && (state === connectivityState.IDLE || state === connectivityState.TRANSIENT_FAILURE)) {
        // Keep trying to connect (with the channel's own reconnect backoff) while calls are refused.
        channel.getConnectivityState(true);
      }
      watch();
    });
  };
  watch();
}
