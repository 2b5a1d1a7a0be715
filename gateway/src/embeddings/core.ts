/**
 * The transport-neutral steps of an embeddings request, shared by the HTTP route and the gRPC
 * service: authenticate (an endpoint of kind embeddings; chat/core.ts) → (the transport parses)
 * → admit (the shared quota step: 1 request and the inputs' token estimate) → one unary `Embed`
 * call on a worker of the endpoint's pools under its breaker (moving to another worker after a
 * worker-side failure, like a generation before its first token) → settle the reservation to the
 * worker's exact token count → (the transport renders).
 */
import type { EmbedRequest, EmbedResponse } from '../../../gen/xerotier/inference/v1/inference_service.js';
import { estimateTextTokens } from '../../../lib/chat/prompt-tokens.js';
import { AppError } from '../../../lib/errors/app-error.js';
import { callOptions } from '../../../lib/grpc/client.js';
import { recordTokens } from '../metrics.js';
import { movableBeforeFirstToken, openFailure } from '../failure-policy.js';
import type { Worker } from '../fleet/fleet.js';
import { reserve, type Authorized, type ChatCall, type ChatDeps, type Reservation } from '../chat/core.js';
import type { RequestSignal } from '../chat/request-signal.js';

/** The embeddings parameters, already validated by the transport. */
export interface EmbedInput {
  /** 1 to 2048 non-empty texts. */
  inputs: string[];
  /** Requested vector length; undefined = the model's own. */
  dimensions: number | undefined;
}

export interface EmbedAdmission extends Reservation {
  request: EmbedRequest;
}

export interface Embedded {
  model: string;
  workerId: string;
  /** One vector per input, in input order. */
  vectors: number[][];
  promptTokens: number;
}

const MAX_ATTEMPTS = 3;

export async function admitEmbedding(deps: ChatDeps, call: ChatCall, who: Authorized, input: EmbedInput): Promise<EmbedAdmission> {
  // Rough (no tokenizer here); the worker's count settles the reservation.
  const estimate = input.inputs.reduce((n, text) => n + estimateTextTokens(text), 0);
  const quota = await reserve(deps, call, who, estimate);
  return {
    ...quota,
    request: { requestId: call.requestId, inputs: input.inputs, dimensions: input.dimensions },
  };
}

/** Runs the embedding on a worker; failures are mapped by the failure policy. */
export async function runEmbedding(deps: ChatDeps, call: ChatCall, admission: EmbedAdmission, signal: RequestSignal): Promise<Embedded> {
  const tried = new Set<Worker>();
  let lastError: unknown;
  try {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (signal.signal.aborted) throw new AppError('cancelled', 'request ended before the embedding ran');
      let worker: Worker;
      try {
        worker = deps.fleet.pick(admission.route, tried);
      } catch (err) {
        // Nothing left to try: report the worker failure we saw rather than "no worker".
        throw attempt > 0 && lastError !== undefined ? lastError : err;
      }
      tried.add(worker);
      worker.localInFlight += 1;
      try {
        const response: EmbedResponse = await worker.breaker.run(() =>
          worker.client.embed(admission.request, callOptions(call.requestId, signal.signal, signal.deadline)),
        );
        recordTokens(deps.metrics, { promptTokens: response.promptTokens, completionTokens: 0 });
        return {
          model: response.model,
          workerId: response.workerId,
          vectors: response.embeddings.map((e) => e.values),
          promptTokens: response.promptTokens,
        };
      } catch (err) {
        if (signal.signal.aborted) throw err;
        lastError = err;
        if (!movableBeforeFirstToken(err)) throw err;
      } finally {
        worker.localInFlight -= 1;
      }
    }
    throw lastError ?? new AppError('unavailable', 'No inference worker could take the request.', { code: 'no_healthy_worker', retryAfterSeconds: 1 });
  } catch (err) {
    throw openFailure(signal.reason(), err);
  }
}

/** Settles the reservation to the tokens the worker counted (nothing when it never answered). */
export function settleEmbedding(deps: ChatDeps, call: ChatCall, who: Authorized, admission: EmbedAdmission, promptTokens: number): void {
  if (!admission.reserved) return;
  deps.quota.settle({ requestId: call.requestId, keyId: who.principal.keyId, tier: who.endpoint.tier, tokens: promptTokens });
}
