/**
 * The key admin RPCs: create, list, get, revoke and rotate API keys of a project. Each takes an
 * optional actor (`actor_key_id`); key-reach.ts decides what an actor may grant and see, and a
 * key outside its reach is answered as not found.
 */
import type { Scope } from '../../../gen/xerotier/auth/v1/auth_service.js';
import { checkExpiresAt } from '../../../lib/auth/expiry.js';
import { canonicalScopes, scopeName, type ScopeName } from '../../../lib/auth/scopes.js';
import { AppError, invalidRequest, notFound } from '../../../lib/errors/app-error.js';
import { generateApiKey, hashApiKey } from './api-key.js';
import type { AuthService, AuthServiceOptions } from './auth-service.js';
import {
  actorEndpointBinding,
  grantedExpiry,
  grantedScopes,
  reachFilter,
  resolveActor,
  withinReach,
  type Actor,
} from './key-reach.js';
import { toApiKeyMessage } from './messages.js';
import { findProjectOrThrow } from './project-admin.js';
import type { ApiKeyRow, NewApiKeyRow, ProjectRow } from './stores/store.js';
import { newId, quoted, validName } from './validation.js';

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;
const MAX_GRACE_SECONDS = 30 * 86_400;

export type KeyAdmin = Pick<AuthService, 'createApiKey' | 'listApiKeys' | 'getApiKey' | 'revokeApiKey' | 'rotateApiKey'>;

/** Requested scopes as names (canonical order, no duplicates); empty when none are requested. */
function requestedScopes(scopes: Scope[]): ScopeName[] {
  return canonicalScopes(
    scopes.map((s) => {
      const name = scopeName(s);
      if (!name) throw invalidRequest('scopes may contain only inference and management.', { param: 'scopes' });
      return name;
    }),
  );
}

const keyNotFound = (): AppError => notFound('API key not found.', { code: 'api_key_not_found', param: 'key_id' });

export function createKeyAdmin(options: AuthServiceOptions): KeyAdmin {
  const { store, pepper, logger: rootLogger } = options;
  const now = options.now ?? Date.now;

  /** The project and the call's actor (undefined = operator). */
  async function caller(request: { project: string; actorKeyId?: string | undefined }): Promise<[ProjectRow, Actor | undefined]> {
    const project = await findProjectOrThrow(store, request.project);
    return [project, await resolveActor(store, project, request.actorKeyId, now())];
  }

  /** A key of the project within the actor's reach; anything else is "not found". */
  async function reachableKey(project: ProjectRow, actor: Actor | undefined, keyId: string): Promise<ApiKeyRow> {
    const key = keyId === '' ? undefined : await store.getApiKey(project.id, keyId);
    if (!key || !withinReach(actor, key)) throw keyNotFound();
    return key;
  }

  function mintKey(
    project: ProjectRow,
    fields: { name: string; scopes: ScopeName[]; endpointId: string | null; expiresAt: number | null; rotatedFromKeyId: string | null },
  ): { row: NewApiKeyRow; secret: string } {
    const { full, prefix } = generateApiKey(project.slug);
    return {
      secret: full,
      row: {
        id: newId('key'),
        projectId: project.id,
        prefix,
        keyHash: hashApiKey(pepper, full).toString('hex'),
        createdAt: now(),
        ...fields,
      },
    };
  }

  async function endpointIdOf(project: ProjectRow, slug: string): Promise<string | null> {
    if (slug === '') return null;
    const endpoint = await store.findEndpoint(project.id, slug);
    if (!endpoint) throw notFound(`Endpoint ${quoted(slug)} not found.`, { code: 'endpoint_not_found', param: 'endpoint' });
    return endpoint.id;
  }

  return {
    async createApiKey(request, context) {
      const [project, actor] = await caller(request);
      const name = validName(request.name, 'name', 'default');
      const requested = requestedScopes(request.scopes);
      const requestedExpiry = request.expireTime === undefined ? null : checkExpiresAt(request.expireTime.getTime(), now());
      let fields: { scopes: ScopeName[]; endpointId: string | null; expiresAt: number | null };
      if (actor) {
        const scopes = grantedScopes(actor, requested);
        const bound = actorEndpointBinding(actor, request.endpointSlug);
        const endpointId = bound ?? (await endpointIdOf(project, request.endpointSlug));
        fields = { scopes, endpointId, expiresAt: grantedExpiry(actor, requestedExpiry) };
      } else {
        const scopes: ScopeName[] = requested.length === 0 ? ['inference'] : requested;
        fields = { scopes, endpointId: await endpointIdOf(project, request.endpointSlug), expiresAt: requestedExpiry };
      }
      const { row, secret } = mintKey(project, { name, ...fields, rotatedFromKeyId: null });
      await store.insertApiKey(row);
      (context?.logger ?? rootLogger).info(
        { projectId: project.id, keyId: row.id, prefix: row.prefix, scopes: row.scopes, actorKeyId: actor?.key.id },
        'api key created',
      );
      const created = await store.getApiKey(project.id, row.id);
      if (!created) throw keyNotFound();
      return { apiKey: toApiKeyMessage(created), secret };
    },

    async listApiKeys(request) {
      const [project, actor] = await caller(request);
      const limit = request.pageSize === 0 ? DEFAULT_PAGE_SIZE : request.pageSize;
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
        throw invalidRequest(`page_size must be between 1 and ${MAX_PAGE_SIZE}.`, { param: 'limit' });
      }
      let after: ApiKeyRow | undefined;
      if (request.after !== '') {
        after = await store.getApiKey(project.id, request.after);
        if (!after || !withinReach(actor, after)) {
          throw invalidRequest('after must be the id of a key of this project.', { param: 'after' });
        }
      }
      const page = await store.listApiKeys(project.id, { limit, after, within: reachFilter(actor) });
      return { apiKeys: page.keys.map(toApiKeyMessage), hasMore: page.hasMore };
    },

    async getApiKey(request) {
      const [project, actor] = await caller(request);
      return { apiKey: toApiKeyMessage(await reachableKey(project, actor, request.keyId)) };
    },

    async revokeApiKey(request, context) {
      const [project, actor] = await caller(request);
      await reachableKey(project, actor, request.keyId);
      const key = await store.revokeApiKey(project.id, request.keyId, now());
      if (!key) throw keyNotFound();
      (context?.logger ?? rootLogger).info(
        { projectId: project.id, keyId: key.id, prefix: key.prefix, actorKeyId: actor?.key.id },
        'api key revoked',
      );
      return { apiKey: toApiKeyMessage(key) };
    },

    async rotateApiKey(request, context) {
      const [project, actor] = await caller(request);
      const old = await reachableKey(project, actor, request.keyId);
      const graceSeconds = request.graceSeconds === 0 ? options.rotationGraceSeconds : request.graceSeconds;
      if (!Number.isInteger(graceSeconds) || graceSeconds < 1 || graceSeconds > MAX_GRACE_SECONDS) {
        throw invalidRequest(`grace_seconds must be between 1 and ${MAX_GRACE_SECONDS}.`, { param: 'grace_seconds' });
      }
      const t = now();
      const notRotatable = (why: string): AppError =>
        invalidRequest(`This API key cannot be rotated: ${why}.`, { code: 'api_key_not_rotatable', param: 'key_id' });
      if (old.revokedAt !== null) throw notRotatable('it has been revoked');
      if (old.graceExpiresAt !== null) throw notRotatable('it was already rotated; rotate its replacement instead');
      if (old.expiresAt !== null && old.expiresAt <= t) throw notRotatable('it has expired');

      // The replacement grants exactly what the old key granted: within the actor's reach too.
      const { row, secret } = mintKey(project, {
        name: old.name,
        scopes: old.scopes,
        endpointId: old.endpointId,
        expiresAt: old.expiresAt,
        rotatedFromKeyId: old.id,
      });
      // The grace period never extends a key's own expiry (Authenticate checks both).
      const graceExpiresAt = t + graceSeconds * 1000;
      if (!(await store.rotateApiKey(project.id, old.id, graceExpiresAt, row))) {
        throw notRotatable('it was revoked or rotated concurrently');
      }
      (context?.logger ?? rootLogger).info(
        { projectId: project.id, keyId: row.id, prefix: row.prefix, previousKeyId: old.id, graceSeconds, actorKeyId: actor?.key.id },
        'api key rotated',
      );
      const [fresh, previous] = await Promise.all([store.getApiKey(project.id, row.id), store.getApiKey(project.id, old.id)]);
      if (!fresh || !previous) throw keyNotFound();
      return { apiKey: toApiKeyMessage(fresh), secret, previousApiKey: toApiKeyMessage(previous) };
    },
  };
}
