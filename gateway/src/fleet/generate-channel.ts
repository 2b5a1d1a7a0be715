/**
 * Generations to a dialled worker as messages on one long-lived GenerateChannel stream, instead
 * of one Generate call (one HTTP/2 stream, with its grpc-js call objects) each. Each generation is
 * a call id sent up the channel with its deadline; its events come back tagged with that id, and
 * leaving a call early sends a cancel for it: the multiplexing of a self-hosted worker's tunnel
 * (tunnel/tunnel-client.ts), with the gateway dialling. Errors are the AppErrors a Generate call
 * would give, so the breaker, the failure policy and the fleet treat both alike.
 *
 * The channel opens with the first generation; when it ends or fails (the worker drained,
 * restarted or vanished), its open calls fail with that error and the next generation opens a
 * new one. A worker without GenerateChannel (an older version, during a rolling upgrade) gets its
 * generations one Generate call each from its first refusal on. Status still travels on WatchStatus.
 */
import type { GenerateChannelRequest, InferenceServiceDefinition } from '../../../gen/xerotier/inference/v1/inference_service.js';
import { ClientError, Status } from 'nice-grpc';
import { AppError, isAppError } from '../../../lib/errors/app-error.js';
import { callOptions, type AppClient } from '../../../lib/grpc/client.js';
import { createOutbox, type Outbox } from '../../../lib/grpc/outbox.js';
import type { Worker } from './fleet.js';
import { createTunnelClient, type TunnelClient } from './tunnel/tunnel-client.js';

export interface GenerateChannel {
  generate: Worker['client']['generate'];
  /** Calls open on the channel now. */
  openCalls(): number;
  /** Ends the channel (its open calls fail as unavailable); later generations open a new one. */
  close(): void;
}

interface OpenChannel {
  calls: TunnelClient;
  requests: Outbox<GenerateChannelRequest>;
  stop: AbortController;
}

/**
 * Events a generation may send ahead of what its caller has read: a caller that stops reading
 * (a paused HTTP client) stops its generation on the worker after at most this many, as a Generate
 * call's HTTP/2 stream window would; the others on the channel go on.
 */
export const CHANNEL_WINDOW = 128;

const ended = (): AppError =>
  new AppError('unavailable', 'The inference worker ended its generation channel.', { code: 'no_healthy_worker', retryAfterSeconds: 1 });

/** Whether the channel failed because the worker has no GenerateChannel (a worker of an older version). */
function unimplemented(err: unknown): boolean {
  return isAppError(err) && err.cause instanceof ClientError && err.cause.code === Status.UNIMPLEMENTED;
}

export function createGenerateChannel(client: AppClient<typeof InferenceServiceDefinition>): GenerateChannel {
  let current: OpenChannel | undefined;
  /** The worker does not take channels: its generations go one Generate call each. */
  let perCall = false;

  const open = (): OpenChannel => {
    const requests = createOutbox<GenerateChannelRequest>();
    const channel: OpenChannel = { calls: createTunnelClient((m) => requests.push(m), CHANNEL_WINDOW), requests, stop: new AbortController() };
    void (async () => {
      let reason = ended();
      try {
        for await (const m of client.generateChannel(requests.drain(), callOptions('generate-channel', channel.stop.signal))) {
          channel.calls.receive(m);
        }
      } catch (err) {
        if (unimplemented(err)) {
          // A worker of an older version (a rolling upgrade): the calls that were waiting may
          // move to another worker, and this worker's next generations go one call each.
          perCall = true;
          reason = new AppError('unavailable', 'The inference worker takes no generation channel.', { code: 'no_healthy_worker', retryAfterSeconds: 1 });
        } else if (isAppError(err) && err.kind !== 'cancelled') reason = err;
      } finally {
        if (current === channel) current = undefined;
        requests.close();
        channel.calls.close(reason);
      }
    })();
    return channel;
  };

  return {
    generate(request, options) {
      if (perCall) return client.generate(request, options);
      current ??= open();
      return current.calls.client.generate(request, options);
    },
    openCalls: () => current?.calls.openCalls() ?? 0,
    close() {
      const channel = current;
      current = undefined;
      channel?.stop.abort();
    },
  };
}
