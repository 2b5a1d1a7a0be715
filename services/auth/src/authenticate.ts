/**
 * Authenticate: is this API key good for this project, endpoint and scope? It decides in this
 * order, so that each answer reveals only what the caller may know:
 *   1. key well-formed (offline, no store lookup)        else 401 invalid_api_key
 *   2. key known, not revoked/expired/past grace         else 401 invalid_api_key
 *   3. key's project is the URL's project (id or slug)   else 403 cross_project_access
 *   4. key holds the route's scope                       else 403 scope_insufficient
 *   5. endpoint-bound key used on its endpoint           else 403 endpoint_mismatch
 *   6. endpoint exists in the project                    else 404 endpoint_not_found
 *   7. endpoint active                                   else 503 endpoint_inactive
 * A key holder never learns whether another tenant's project exists (403 either way).
 */
import { scopeName, scopeValue, type ScopeName } from '../../../lib/auth/scopes.js';
import { AppError, invalidRequest, notFound, permissionDenied, unauthenticated } from '../../../lib/errors/app-error.js';
import { hashApiKey, hashMatches, parseApiKey } from './api-key.js';
import type { AuthService, AuthServiceOptions } from './auth-service.js';
import { unusableReason } from './key-state.js';
import { toEndpointMessage, toProjectMessage } from './messages.js';
import type { EndpointRow } from './stores/store.js';
import { quoted } from './validation.js';

/** last_used_at is written at most once per key per minute: Authenticate stays a read. */
export const LAST_USED_INTERVAL_MS = 60_000;

const surfaces: Record<ScopeName, string> = {
  inference: 'inference routes (/v1/chat/completions, /v1/models)',
  management: 'management routes (/v1/management/...)',
};

export function createAuthenticate(options: AuthServiceOptions): Pick<AuthService, 'authenticate'> {
  const { store, pepper, logger: rootLogger } = options;
  const now = options.now ?? Date.now;

  return {
    async authenticate(request, context) {
      const parsed = parseApiKey(request.apiKey);
      if (!parsed) {
        throw unauthenticated(request.apiKey === '' ? 'Missing API key.' : 'Invalid API key.', { code: 'invalid_api_key' });
      }
      const required = scopeName(request.requiredScope);
      if (!required) throw invalidRequest('required_scope must be inference or management.', { param: 'required_scope' });

      const digest = hashApiKey(pepper, parsed.full);
      const found = await store.findKeyForAuth(digest.toString('hex'), request.endpoint);
      if (!found || !hashMatches(found.key.keyHash, digest) || found.project.slug !== parsed.projectSlug) {
        throw unauthenticated('Invalid API key.', { code: 'invalid_api_key' });
      }
      const { key, project } = found;
      const t = now();
      const unusable = unusableReason(key, t);
      if (unusable !== undefined) throw unauthenticated(unusable, { code: 'invalid_api_key' });

      // Only a valid key gets this far; comparing projects now tells its holder nothing new.
      if (request.project !== project.id && request.project !== project.slug) {
        throw permissionDenied('This API key does not belong to the project in the URL.', {
          code: 'cross_project_access',
        });
      }
      if (!key.scopes.includes(required)) {
        throw permissionDenied(`This API key lacks the '${required}' scope required for ${surfaces[required]}.`, {
          code: 'scope_insufficient',
        });
      }

      let endpoint: EndpointRow | undefined;
      if (request.endpoint !== '') {
        if (key.endpointSlug !== null && key.endpointSlug !== request.endpoint) {
          throw permissionDenied(`This API key is bound to endpoint '${key.endpointSlug}'.`, { code: 'endpoint_mismatch' });
        }
        endpoint = found.endpoint;
        if (!endpoint) {
          throw notFound(`Endpoint ${quoted(request.endpoint)} not found in project '${project.slug}'.`, {
            code: 'endpoint_not_found',
          });
        }
        if (!endpoint.active) {
          throw new AppError('unavailable', `Endpoint '${endpoint.slug}' is not active.`, {
            code: 'endpoint_inactive',
            retryAfterSeconds: 30,
          });
        }
      }

      if (key.lastUsedAt === null || t - key.lastUsedAt >= LAST_USED_INTERVAL_MS) {
        // Best effort: a failed bookkeeping write must not refuse a valid key.
        await store.touchApiKey(key.id, t, LAST_USED_INTERVAL_MS).catch((err: unknown) => {
          (context?.logger ?? rootLogger).warn({ err, keyId: key.id }, 'could not record key use');
        });
      }
      return {
        principal: {
          keyId: key.id,
          project: toProjectMessage(project),
          endpoint: endpoint ? toEndpointMessage(endpoint) : undefined,
          scopes: key.scopes.map(scopeValue),
        },
      };
    },
  };
}
