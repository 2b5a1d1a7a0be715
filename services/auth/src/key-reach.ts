/**
 * What an actor key may do in the key admin RPCs. The gateway's management routes pass the id
 * of the key that called them as `actor_key_id`; without it the call is an operator's (service
 * token) and reaches every key of the project.
 *
 * The rule: no key grants, sees or takes over more than it holds itself. A key is within an
 * actor's reach when
 *   - its scopes are a subset of the actor's scopes,
 *   - it is bound to the actor's endpoint, when the actor is endpoint-bound, and
 *   - it stops working no later than the actor does, when the actor has an end (expiry, or the
 *     end of its grace period after a rotation),
 * and a key the actor creates must satisfy the same three conditions. A key outside reach is
 * answered exactly like an unknown key, so the actor never learns that it exists.
 */
import { permissionDenied, unauthenticated } from '../../../lib/errors/app-error.js';
import type { ScopeName } from '../../../lib/auth/scopes.js';
import { keyEndsAt, unusableReason } from './key-state.js';
import type { ApiKeyRow, AuthStore, KeyReachFilter, ProjectRow } from './stores/store.js';

export interface Actor {
  key: ApiKeyRow;
  /** When the actor stops working at the latest; null = never. */
  endsAt: number | null;
}

/**
 * The actor of a call: undefined for an operator call (no actor id). A given actor must be a
 * working key of `project` holding the management scope, checked in the order Authenticate uses.
 */
export async function resolveActor(
  store: AuthStore,
  project: ProjectRow,
  actorKeyId: string | undefined,
  now: number,
): Promise<Actor | undefined> {
  if (actorKeyId === undefined) return undefined;
  const key = actorKeyId === '' ? undefined : await store.findApiKey(actorKeyId);
  if (!key) throw unauthenticated('The calling API key is not valid.', { code: 'invalid_api_key' });
  const reason = unusableReason(key, now);
  if (reason !== undefined) throw unauthenticated(reason, { code: 'invalid_api_key' });
  if (key.projectId !== project.id) {
    throw permissionDenied('The calling API key does not belong to this project.', { code: 'cross_project_access' });
  }
  if (!key.scopes.includes('management')) {
    throw permissionDenied("The calling API key lacks the 'management' scope.", { code: 'scope_insufficient' });
  }
  return { key, endsAt: keyEndsAt(key) };
}

/** Whether `key` is within the actor's reach (always, for an operator call). */
export function withinReach(actor: Actor | undefined, key: ApiKeyRow): boolean {
  if (!actor) return true;
  if (!key.scopes.every((s) => actor.key.scopes.includes(s))) return false;
  if (actor.key.endpointId !== null && key.endpointId !== actor.key.endpointId) return false;
  if (actor.endsAt === null) return true;
  const ends = keyEndsAt(key);
  return ends !== null && ends <= actor.endsAt;
}

/** The same condition as withinReach, for the store to page through (undefined = no limit). */
export function reachFilter(actor: Actor | undefined): KeyReachFilter | undefined {
  if (!actor) return undefined;
  return { scopes: actor.key.scopes, endpointId: actor.key.endpointId, endsBy: actor.endsAt };
}

/** Scopes of a new key: the requested ones, which must not exceed the actor's; none = the actor's. */
export function grantedScopes(actor: Actor, requested: ScopeName[]): ScopeName[] {
  if (requested.length === 0) return actor.key.scopes;
  const extra = requested.filter((s) => !actor.key.scopes.includes(s));
  if (extra.length > 0) {
    throw permissionDenied(`A key cannot grant scopes it does not hold itself: ${extra.join(', ')}.`, {
      code: 'key_scope_exceeds_caller',
      param: 'scopes',
    });
  }
  return requested;
}

/**
 * Endpoint id a new key is bound to when the actor is endpoint-bound: the actor's own (also when
 * none is requested); any other slug is refused before it is looked up, so a bound actor learns
 * nothing about other endpoints. Undefined when the actor is unbound (any endpoint may be asked).
 */
export function actorEndpointBinding(actor: Actor, requestedSlug: string): string | undefined {
  const { endpointId, endpointSlug: own } = actor.key;
  if (endpointId === null) return undefined;
  if (requestedSlug !== '' && requestedSlug !== own) {
    throw permissionDenied(`A key bound to endpoint '${own}' can only create keys bound to '${own}'.`, {
      code: 'endpoint_binding_exceeds_caller',
      param: 'endpoint',
    });
  }
  return endpointId;
}

/** Expiry of a new key: the requested one, no later than the actor's end; none = the actor's end. */
export function grantedExpiry(actor: Actor, requested: number | null): number | null {
  if (actor.endsAt === null) return requested;
  if (requested === null) return actor.endsAt;
  if (requested > actor.endsAt) {
    throw permissionDenied('A key cannot create a key that outlives it: expires_at is later than the calling key\'s end.', {
      code: 'key_expiry_exceeds_caller',
      param: 'expires_at',
    });
  }
  return requested;
}
