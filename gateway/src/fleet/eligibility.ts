/**
 * Which workers MAY serve a request, before any scoring: a worker of one of the tier's pools that
 * serves the endpoint's model, and is either shared capacity (no owner) or owned by the
 * requesting project. A worker owned by another project does not exist for the request: it is
 * neither eligible nor evidence that the platform knows its model.
 *
 * When nothing is eligible the request fails with the reason a client can act on:
 * - 404 `model_not_found`: no worker visible to the project serves the model, and none has
 *   since this gateway started (the platform does not know the model: usually the endpoint
 *   names a model no worker was ever started with);
 * - 503 `model_unavailable` (+ Retry-After): the model is known (served in another pool, or by a
 *   worker that left or has not reported yet) but no worker of the endpoint's pools serves it now.
 */
import { modelNotFound, modelUnavailable } from '../../../lib/errors/model-errors.js';

export interface RouteRequest {
  /** The tier's hardware pools, the endpoint's own first. */
  pools: readonly string[];
  /** The endpoint's model id (the platform's canonical name). */
  model: string;
  /** The requesting project's id (auth's Project.id). */
  project: string;
}

/** What eligibility needs to know of a worker. */
export interface Candidate {
  pool: string;
  /** Platform model ids the worker serves; undefined until known (no registry record, no status yet). */
  readonly models: readonly string[] | undefined;
  /** Owning project id; undefined for shared capacity. */
  owner?: string | undefined;
}

/** A worker owned by another project is invisible to this one. */
export function visibleTo(worker: Pick<Candidate, 'owner'>, project: string): boolean {
  return worker.owner === undefined || worker.owner === '' || worker.owner === project;
}

export function isEligible(worker: Candidate, request: RouteRequest): boolean {
  return (
    request.pools.includes(worker.pool) && visibleTo(worker, request.project) && (worker.models?.includes(request.model) ?? false)
  );
}

/**
 * The eligible workers among `workers` (never empty), or the error that says why there are none.
 * `seenBefore(model, project)` says whether this gateway has seen a worker visible to `project`
 * advertise `model` since it started.
 */
export function eligibleWorkers<W extends Candidate>(
  workers: readonly W[],
  request: RouteRequest,
  seenBefore: (model: string, project: string) => boolean,
): W[] {
  const eligible = workers.filter((w) => isEligible(w, request));
  if (eligible.length > 0) return eligible;
  const visible = workers.filter((w) => visibleTo(w, request.project));
  const known =
    seenBefore(request.model, request.project) ||
    visible.some((w) => w.models?.includes(request.model) ?? false) ||
    // A worker of the endpoint's pools that has not said what it serves yet may serve it.
    visible.some((w) => request.pools.includes(w.pool) && w.models === undefined);
  if (!known) throw modelNotFound(request.model);
  throw modelUnavailable(request.model);
}
