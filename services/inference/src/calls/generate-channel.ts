/**
 * The worker's side of GenerateChannel: generations arrive as messages on one long-lived stream
 * from a gateway (instead of one Generate call, one HTTP/2 stream, each) and run on the same
 * Generate handler (call-runner.ts); their events go back on the stream tagged with their call id.
 *
 * The stream ends when the caller ends or abandons it (its running calls are then cancelled), or
 * when the worker has drained (`close`): the caller sees the end and opens a new stream, to this
 * worker if it is still there.
 */
import type { CallContext } from 'nice-grpc';
import type { GenerateChannelRequest } from '../../../../gen/xerotier/inference/v1/inference_service.js';
import type { RequestContext } from '../../../../lib/grpc/server.js';
import type { GrpcServerMetrics } from '../../../../lib/metrics/grpc.js';
import { CallRunner, type CallReport, type GenerateHandler } from './call-runner.js';
import { createOutbox, type Outbox } from '../../../../lib/grpc/outbox.js';

export const GENERATE_CHANNEL_RPC = '/xerotier.inference.v1.InferenceService/GenerateChannel';

/** The open channels of one worker, so that they can be ended together once it has drained. */
export class GenerateChannels {
  private readonly open = new Set<Outbox<CallReport>>();

  /** `metrics`: each generation on a channel is counted as a Generate call (call-runner.ts). */
  constructor(
    private readonly generate: GenerateHandler,
    private readonly metrics?: GrpcServerMetrics | undefined,
  ) {}

  /** The GenerateChannel handler. */
  serve(requests: AsyncIterable<GenerateChannelRequest>, context: CallContext & RequestContext): AsyncIterable<CallReport> {
    const out = createOutbox<CallReport>();
    const runner = new CallRunner(this.generate, context.logger, (m) => out.push(m), context.peer, GENERATE_CHANNEL_RPC, this.metrics);
    this.open.add(out);
    void (async () => {
      try {
        for await (const m of requests) {
          if (m.generate) runner.start(m.generate);
          else if (m.credit) runner.credit(m.credit.callId, m.credit.events);
          else if (m.cancel !== undefined) runner.cancel(m.cancel);
        }
      } catch {
        // The caller abandoned the stream: its calls are cancelled below.
      } finally {
        runner.cancelAll();
        out.close();
        this.open.delete(out);
      }
    })();
    return out.drain();
  }

  /** Ends every open channel (after the worker drained: no call is running on any). */
  close(): void {
    for (const out of this.open) out.close();
    this.open.clear();
  }
}
