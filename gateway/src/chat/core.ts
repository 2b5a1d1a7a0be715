/**
 * The transport-neutral steps of a chat request, shared by the HTTP route and the gRPC service:
 * authenticate → (the transport parses) → admit (context check, worker pre-check, quota
 * reservation) → open the generation → (the transport renders) → settle the quota to the real
 * usage. Each transport supplies only its own parse and render. A legacy completion is the same
 * generation with a raw prompt instead of messages; embeddings (embeddings/core.ts) share
 * authenticate and the quota step (`reserve`).
 */
import { endpointKindName, type EndpointKindName } from '../../../lib/auth/endpoint-kinds.js';
import { estimatePromptTokens, estimateTextTokens, toolsAsText } from '../../../lib/chat/prompt-tokens.js';
import type { Logger } from 'pino';
import { Scope, type Endpoint, type Principal } from '../../../gen/xerotier/auth/v1/auth_service.js';
import { GenerateRequest, type GenerateResponse } from '../../../gen/xerotier/inference/v1/inference_service.js';
import type { LimitStatus as QuotaLimitStatus } from '../../../gen/xerotier/quota/v1/quota_service.js';
import { AppError, invalidRequest } from '../../../lib/errors/app-error.js';
import { recordTokens, type GatewayMetrics } from '../metrics.js';
import type { Tier, TierTable } from '../../../lib/tiers/tier-table.js';
import type { GatewayConfig } from '../config.js';
import { openFailure, rateLimited } from '../failure-policy.js';
import type { AuthPort, QuotaPort } from '../upstreams.js';
import type { Fleet, RouteRequest } from '../fleet/fleet.js';
import { openGeneration, type Generation } from './generation.js';
import { createRequestSignal, type Departure, type OpenRequests, type RequestSignal } from './request-signal.js';

export interface ChatDeps {
  config: GatewayConfig;
  auth: AuthPort;
  quota: QuotaPort;
  fleet: Fleet;
  tiers: TierTable;
  /** The requests in flight in this process: ended together when the gateway's drain grace is over. */
  requests: OpenRequests;
  metrics: Pick<GatewayMetrics, 'timeToFirstToken' | 'tokensTotal'>;
}

/** What a transport knows about a call before reading its parameters. */
export interface ChatCall {
  /** Chosen by the gateway (never by the client): it keys the quota reservation. */
  requestId: string;
  logger: Logger;
  /** performance.now() at arrival: the tier's request timeout counts from here. */
  arrivedAt: number;
  apiKey: string;
  project: string;
  endpoint: string;
}

/** The chat parameters, already validated and mapped by the transport. */
export interface ChatInput {
  messages: GenerateRequest['messages'];
  /** A legacy completion's raw prompt (then `messages` is empty). */
  prompt?: string | undefined;
  /** Requested completion tokens; omitted or too large → the context left. */
  maxTokens: number | undefined;
  temperature: number;
  topP: number;
  seed: number | undefined;
  stop: string[];
  /** Tools, output format, penalties and the other optional parameters, as the worker takes them. */
  features: ChatFeatures;
}

/** The request fields beyond the basic sampling ones; the worker refuses those its engine cannot honour. */
export type ChatFeatures = Omit<GenerateRequest, 'requestId' | 'messages' | 'maxTokens' | 'temperature' | 'topP' | 'seed' | 'stop' | 'prompt'>;

/** No tools, no output format, no penalties: what a request that sets none of them asks for. */
export function noFeatures(): ChatFeatures {
  const { requestId: _r, messages: _m, maxTokens: _x, temperature: _t, topP: _p, seed: _s, stop: _o, prompt: _q, ...none } = GenerateRequest.fromPartial({});
  return none;
}

export interface Authorized {
  principal: Principal;
  endpoint: Endpoint;
  tier: Tier;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

export interface Admission extends Reservation {
  /**
   * What the worker is asked for; `open` drops it once the generation opened, so that an open
   * stream does not keep the prompt (messages, tools) alive while it waits for tokens.
   */
  request: GenerateRequest | undefined;
  /** What this request used so far; `final` once the engine reported its count. */
  tally: { promptTokens: number; completionTokens: number; final: Usage | undefined };
}

/**
 * Authenticates the key for the endpoint and checks that the endpoint serves `kind` (chat for
 * chat and legacy completions, embeddings for embeddings): the wrong kind is a 400
 * `endpoint_kind_mismatch`.
 */
export async function authenticate(deps: ChatDeps, call: ChatCall, kind: EndpointKindName = 'chat'): Promise<Authorized> {
  const principal = await deps.auth.authenticate(
    { apiKey: call.apiKey, project: call.project, endpoint: call.endpoint, scope: Scope.SCOPE_INFERENCE },
    call.requestId,
  );
  const endpoint = principal.endpoint;
  if (!endpoint) throw new AppError('internal', 'auth returned no endpoint');
  const serves = endpointKindName(endpoint.kind);
  if (serves !== kind) {
    throw invalidRequest(
      `The endpoint '${endpoint.slug}' serves ${serves ?? 'another kind of request'}; this request needs an endpoint that serves ${kind}.`,
      { code: 'endpoint_kind_mismatch' },
    );
  }
  const tier = deps.tiers.get(endpoint.tier);
  if (!tier) throw new AppError('internal', `endpoint tier ${endpoint.tier} is not configured`);
  return { principal, endpoint, tier };
}

export async function admit(deps: ChatDeps, call: ChatCall, who: Authorized, input: ChatInput): Promise<Admission> {
  const { endpoint, tier } = who;
  // The caller's own end-user id and tags are theirs to correlate by: recorded with the request.
  const { user, metadata } = input.features;
  if (user !== '' || Object.keys(metadata).length > 0) call.logger.info({ user, metadata }, 'request tags');
  const promptParam = input.prompt === undefined ? 'messages' : 'prompt';
  // Rough (no tokenizer here); the worker's tokenizer settles the real count.
  const promptEstimate =
    input.prompt === undefined
      ? estimatePromptTokens([...input.messages, ...toolsAsText(input.features.tools)])
      : estimateTextTokens(input.prompt);
  // A prompt that cannot fit the context window is the caller's error whatever the quota says.
  // The estimate is rough, so only a clear overflow is refused here; the worker's tokenizer
  // refuses the rest with the same code.
  if (promptEstimate > endpoint.contextWindow) {
    throw invalidRequest(
      `This model's maximum context length is ${endpoint.contextWindow} tokens; the ${promptParam} are about ${promptEstimate} tokens.`,
      { code: 'context_length_exceeded', param: promptParam },
    );
  }
  const room = Math.max(1, endpoint.contextWindow - promptEstimate);
  const maxTokens = Math.min(input.maxTokens ?? room, room);
  const quota = await reserve(deps, call, who, reservedTokens(promptEstimate, input.maxTokens === undefined ? undefined : maxTokens, room, tier));
  return {
    ...quota,
    request: {
      requestId: call.requestId,
      messages: input.messages,
      maxTokens,
      temperature: input.temperature,
      topP: input.topP,
      seed: input.seed,
      stop: input.stop,
      ...input.features,
      ...(input.prompt === undefined ? {} : { prompt: input.prompt }),
    },
    tally: { promptTokens: promptEstimate, completionTokens: 0, final: undefined },
  };
}

/** The workers that may serve an endpoint's request: its tier's pools (its own first), its model, its project. */
export function routeOf(who: Authorized): RouteRequest {
  const { endpoint, tier } = who;
  return {
    pools: [endpoint.hardwarePool, ...tier.pools.filter((p) => p !== endpoint.hardwarePool)],
    model: endpoint.model,
    project: who.principal.project?.id ?? '',
  };
}

/** The limits of a reservation once they were published (shared, never written to). */
const NO_LIMITS: Reservation['limits'] = Object.freeze({ requests: undefined, tokens: undefined });

/** The quota step every inference request takes, whatever it asks the worker for. */
export interface Reservation {
  /** Quota figures for rate-limit headers or metadata (absent when quota admitted fail-open; cleared once a chat generation opened). */
  limits: { requests: QuotaLimitStatus | undefined; tokens: QuotaLimitStatus | undefined };
  /** False when quota was unreachable and the policy admitted without a reservation. */
  reserved: boolean;
  /** Set when quota said no: publish `limits`, then throw it. */
  denied: AppError | undefined;
  /** The workers that may serve it: the tier's pools, the endpoint's model, the project. */
  route: RouteRequest;
}

/**
 * Checks that a worker could take the request (before charging the key's quota: our overload
 * never costs the caller quota), then reserves 1 request and `tokens` against the key's limits.
 */
export async function reserve(deps: ChatDeps, call: ChatCall, who: Authorized, tokens: number): Promise<Reservation> {
  const route = routeOf(who);
  deps.fleet.pick(route, new Set());
  const reservation = await deps.quota.reserve({ requestId: call.requestId, keyId: who.principal.keyId, tier: who.endpoint.tier, tokens });
  return {
    limits: { requests: reservation?.requests, tokens: reservation?.tokens },
    reserved: reservation !== undefined,
    denied: reservation && reservation.decision !== 1 /* DECISION_ALLOW */ ? rateLimited(reservation) : undefined,
    route,
  };
}

/**
 * Tokens reserved against tokens/min before the generation (settled to the real usage after it):
 * the prompt estimate plus max_tokens, or, when max_tokens was omitted, the tier's
 * `reservedCompletionTokens` (the generation may still use the whole context left). Capped at
 * the tier's tokens/min while the prompt alone fits, so a request is refused for good only when
 * its prompt can never fit in a minute.
 */
export function reservedTokens(promptEstimate: number, maxTokens: number | undefined, room: number, tier: Tier): number {
  const completion = maxTokens ?? Math.min(tier.reservedCompletionTokens, room);
  const estimate = promptEstimate + completion;
  const limit = tier.tokensPerMinute;
  return limit !== null && promptEstimate <= limit ? Math.min(estimate, limit) : estimate;
}

/** The request's signal: the tier's timeout from arrival, capped by the caller's own deadline. */
export function requestSignal(deps: ChatDeps, call: ChatCall, who: Authorized, clientGone: AbortSignal | Departure, callerDeadline?: Date): RequestSignal {
  let remainingMs = who.tier.requestTimeoutSeconds * 1000 - (performance.now() - call.arrivedAt);
  if (callerDeadline) remainingMs = Math.min(remainingMs, callerDeadline.getTime() - Date.now());
  return createRequestSignal({ remainingMs, clientGone, requests: deps.requests });
}

/**
 * Opens the generation (first token in hand) and starts the idle-stream timer. Failures before
 * the first token are mapped by the failure policy.
 */
export async function open(deps: ChatDeps, call: ChatCall, who: Authorized, admission: Admission, signal: RequestSignal): Promise<Generation> {
  const { tally, request } = admission;
  if (!request) throw new AppError('internal', 'the admission was already opened');
  const generation = await openGeneration({
    fleet: deps.fleet,
    route: admission.route,
    request,
    requestId: call.requestId,
    signal,
    deadline: signal.deadline,
    ttftTimeoutMs: deps.config.GATEWAY_TTFT_TIMEOUT_MS,
    maxAttempts: 3,
    routing: { project: admission.route.project, free: who.endpoint.tier === 'free' },
    onEvent(event: GenerateResponse) {
      signal.touch();
      if (event.delta) tally.completionTokens += event.delta.tokenCount;
      if (event.final) {
        tally.final = { promptTokens: event.final.usage?.promptTokens ?? 0, completionTokens: event.final.usage?.completionTokens ?? 0 };
      }
    },
  }).catch((err: unknown) => {
    throw openFailure(signal.reason(), err);
  });
  // The transports have written the rate-limit headers before opening: an open stream keeps
  // neither the prompt nor the quota figures (each with its reset time as a Date).
  admission.request = undefined;
  admission.limits = NO_LIMITS;
  deps.metrics.timeToFirstToken.observe({ pool: generation.worker.pool }, (performance.now() - call.arrivedAt) / 1000);
  if (generation.start.promptTokens > 0) tally.promptTokens = generation.start.promptTokens;
  signal.watchIdle(who.tier.idleStreamTimeoutSeconds * 1000);
  // Clients see the endpoint's model id (the platform's name), never the worker's own name for it.
  return { ...generation, start: { ...generation.start, model: who.endpoint.model } };
}

/**
 * Settles the reservation to what was really used: the engine's final count; if the stream ended
 * early (client gone, worker lost), the engine's prompt count plus the tokens relayed.
 */
/**
 * Ends a request's accounting and returns what it used: the engine's final count, or, when the
 * stream ended early (client gone, worker lost), the engine's prompt count plus the tokens that
 * reached the client (nothing when none did). Quota is settled to exactly these numbers.
 */
export function settle(deps: ChatDeps, call: ChatCall, who: Authorized, admission: Admission, signal: RequestSignal): SettledUsage {
  signal.dispose();
  const { tally } = admission;
  if (tally.final) recordTokens(deps.metrics, tally.final);
  const used: SettledUsage = tally.final
    ? { promptTokens: tally.final.promptTokens, completionTokens: tally.final.completionTokens, completed: true }
    : tally.completionTokens > 0
      ? { promptTokens: tally.promptTokens, completionTokens: tally.completionTokens, completed: false }
      : { promptTokens: 0, completionTokens: 0, completed: false };
  const tokens = used.promptTokens + used.completionTokens;
  if (admission.reserved) {
    deps.quota.settle({ requestId: call.requestId, keyId: who.principal.keyId, tier: who.endpoint.tier, tokens });
  }
  const reason = signal.reason();
  if (reason) call.logger.info({ reason, completionTokens: tally.completionTokens }, 'request ended early');
  return used;
}

export interface SettledUsage {
  promptTokens: number;
  completionTokens: number;
  /** The engine's final result arrived. */
  completed: boolean;
}

/** What every rendering of a completion names: its id, creation time, model and build. */
export interface CompletionMeta {
  id: string;
  /** Unix seconds. */
  created: number;
  model: string;
  fingerprint: string;
  workerId: string;
}

/** Completion ids are derived from the gateway's request id. */
export function completionMeta(requestId: string, generation: Generation): CompletionMeta {
  return {
    id: `chatcmpl-${requestId.replace(/^req_/, '')}`,
    created: Math.floor(Date.now() / 1000),
    model: generation.start.model,
    fingerprint: generation.start.systemFingerprint,
    workerId: generation.start.workerId,
  };
}
