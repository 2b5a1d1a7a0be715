/**
 * AuthService: Authenticate plus the admin RPCs (issue 3). All policy lives here; the store only
 * persists. Every method is a plain async function of the request, so the same object is the
 * nice-grpc implementation, the seed's API and the unit tests' subject.
 *
 * Authenticate decides in this order, so that each answer reveals only what the caller may know:
 *   1. key well-formed (offline, no store lookup)        else 401 invalid_api_key
 *   2. key known, not revoked/expired/past grace         else 401 invalid_api_key
 *   3. key's project is the URL's project (id or slug)   else 403 cross_project_access
 *   4. key holds the route's scope                       else 403 scope_insufficient
 *   5. endpoint-bound key used on its endpoint           else 403 endpoint_mismatch
 *   6. endpoint exists in the project                    else 404 endpoint_not_found
 *   7. endpoint active                                   else 503 endpoint_inactive
 * A key holder never learns whether another tenant's project exists (403 either way).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import {
  Scope,
  type ApiKey,
  type AuthenticateRequest,
  type AuthenticateResponse,
  type CreateApiKeyRequest,
  type CreateApiKeyResponse,
  type CreateEndpointRequest,
  type CreateEndpointResponse,
  type CreateProjectRequest,
  type CreateProjectResponse,
  type Endpoint,
  type GetApiKeyRequest,
  type GetApiKeyResponse,
  type ListApiKeysRequest,
  type ListApiKeysResponse,
  type ListEndpointsRequest,
  type ListEndpointsResponse,
  type ListProjectsRequest,
  type ListProjectsResponse,
  type Project,
  type RevokeApiKeyRequest,
  type RevokeApiKeyResponse,
  type RotateApiKeyRequest,
  type RotateApiKeyResponse,
  type SetEndpointActiveRequest,
  type SetEndpointActiveResponse,
} from '../../../gen/xerotier/auth/v1/auth_service.js';
import { AppError, invalidRequest, notFound, permissionDenied, unauthenticated } from '../../../lib/errors/app-error.js';
import type { TierTable } from '../../../lib/tiers/tier-table.js';
import { PROJECT_SLUG, generateApiKey, hashApiKey, hashMatches, parseApiKey } from './api-key.js';
import {
  UniqueViolationError,
  type ApiKeyRow,
  type AuthStore,
  type EndpointRow,
  type NewApiKeyRow,
  type ProjectRow,
  type ScopeName,
} from './stores/store.js';

export const ENDPOINT_SLUG = PROJECT_SLUG;
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$/;
const POOL_NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;
export const DEFAULT_CONTEXT_WINDOW = 4096;
const MAX_CONTEXT_WINDOW = 10_000_000;
export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;
const MAX_GRACE_SECONDS = 30 * 86_400;
/** last_used_at is written at most once per key per minute: Authenticate stays a read. */
export const LAST_USED_INTERVAL_MS = 60_000;

export interface AuthServiceOptions {
  store: AuthStore;
  /** HMAC pepper for key hashes. */
  pepper: string;
  tiers: TierTable;
  /** Default grace period of rotated keys (seconds). */
  rotationGraceSeconds: number;
  logger: Logger;
  /** Clock in epoch ms (tests inject one). */
  now?: (() => number) | undefined;
}

/** Per-call context; nice-grpc passes its CallContext, which carries our logger. */
interface Ctx {
  logger?: Logger | undefined;
}

export interface AuthService {
  authenticate(request: AuthenticateRequest, context?: Ctx): Promise<AuthenticateResponse>;
  createProject(request: CreateProjectRequest, context?: Ctx): Promise<CreateProjectResponse>;
  listProjects(request: ListProjectsRequest, context?: Ctx): Promise<ListProjectsResponse>;
  createEndpoint(request: CreateEndpointRequest, context?: Ctx): Promise<CreateEndpointResponse>;
  listEndpoints(request: ListEndpointsRequest, context?: Ctx): Promise<ListEndpointsResponse>;
  setEndpointActive(request: SetEndpointActiveRequest, context?: Ctx): Promise<SetEndpointActiveResponse>;
  createApiKey(request: CreateApiKeyRequest, context?: Ctx): Promise<CreateApiKeyResponse>;
  listApiKeys(request: ListApiKeysRequest, context?: Ctx): Promise<ListApiKeysResponse>;
  getApiKey(request: GetApiKeyRequest, context?: Ctx): Promise<GetApiKeyResponse>;
  revokeApiKey(request: RevokeApiKeyRequest, context?: Ctx): Promise<RevokeApiKeyResponse>;
  rotateApiKey(request: RotateApiKeyRequest, context?: Ctx): Promise<RotateApiKeyResponse>;
}

export const newId = (kind: 'proj' | 'ep' | 'key'): string => `${kind}_${randomBytes(12).toString('hex')}`;

const scopeNames: Partial<Record<Scope, ScopeName>> = {
  [Scope.SCOPE_INFERENCE]: 'inference',
  [Scope.SCOPE_MANAGEMENT]: 'management',
};
const scopeValues: Record<ScopeName, Scope> = {
  inference: Scope.SCOPE_INFERENCE,
  management: Scope.SCOPE_MANAGEMENT,
};
const surfaces: Record<ScopeName, string> = {
  inference: 'inference routes (/v1/chat/completions, /v1/models)',
  management: 'management routes (/v1/management/...)',
};

export function toProjectMessage(p: ProjectRow): Project {
  return { id: p.id, slug: p.slug, name: p.name, createTime: new Date(p.createdAt) };
}

export function toEndpointMessage(e: EndpointRow): Endpoint {
  return {
    id: e.id,
    projectId: e.projectId,
    slug: e.slug,
    tier: e.tier,
    model: e.model,
    hardwarePool: e.hardwarePool,
    contextWindow: e.contextWindow,
    active: e.active,
    createTime: new Date(e.createdAt),
  };
}

export function toApiKeyMessage(k: ApiKeyRow): ApiKey {
  return {
    id: k.id,
    projectId: k.projectId,
    name: k.name,
    prefix: k.prefix,
    scopes: k.scopes.map((s) => scopeValues[s]),
    endpointSlug: k.endpointSlug ?? '',
    expireTime: k.expiresAt === null ? undefined : new Date(k.expiresAt),
    revoked: k.revokedAt !== null,
    rotatedFromKeyId: k.rotatedFromKeyId ?? '',
    graceExpireTime: k.graceExpiresAt === null ? undefined : new Date(k.graceExpiresAt),
    createTime: new Date(k.createdAt),
    lastUsedTime: k.lastUsedAt === null ? undefined : new Date(k.lastUsedAt),
  };
}

/** Display names: 1–100 printable characters, no control characters. */
function validName(name: string, param: string, fallback: string): string {
  const trimmed = name.trim();
  if (trimmed === '') return fallback;
  // eslint-disable-next-line no-control-regex
  if (trimmed.length > 100 || /[\u0000-\u001f\u007f]/.test(trimmed)) {
    throw invalidRequest(`${param} must be 1-100 printable characters.`, { param });
  }
  return trimmed;
}

function validSlug(slug: string, param: string): string {
  if (!ENDPOINT_SLUG.test(slug)) {
    throw invalidRequest(
      `${param} must be 1-40 characters of lowercase letters, digits and hyphens, starting with a letter or digit.`,
      { param },
    );
  }
  return slug;
}

/** Echo user input in messages only when it is a harmless slug. */
const quoted = (s: string): string => (ENDPOINT_SLUG.test(s) || /^proj_[0-9a-f]{24}$/.test(s) ? `'${s}'` : 'given');

export function createAuthService(options: AuthServiceOptions): AuthService {
  const { store, pepper, tiers, logger: rootLogger } = options;
  const now = options.now ?? Date.now;

  async function projectOf(ref: string): Promise<ProjectRow> {
    const project = ref === '' ? undefined : await store.findProject(ref);
    if (!project) throw notFound(`Project ${quoted(ref)} not found.`, { code: 'project_not_found', param: 'project' });
    return project;
  }

  function validScopes(scopes: Scope[]): ScopeName[] {
    if (scopes.length === 0) return ['inference'];
    const names = new Set<ScopeName>();
    for (const s of scopes) {
      const name = scopeNames[s];
      if (!name) throw invalidRequest('scopes may contain only inference and management.', { param: 'scopes' });
      names.add(name);
    }
    // Stored in a canonical order.
    return (['inference', 'management'] as const).filter((n) => names.has(n));
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

  async function existingKey(project: ProjectRow, keyId: string): Promise<ApiKeyRow> {
    const key = keyId === '' ? undefined : await store.getApiKey(project.id, keyId);
    if (!key) throw notFound('API key not found.', { code: 'api_key_not_found', param: 'key_id' });
    return key;
  }

  return {
    async authenticate(request, context) {
      const parsed = parseApiKey(request.apiKey);
      if (!parsed) {
        throw unauthenticated(request.apiKey === '' ? 'Missing API key.' : 'Invalid API key.', { code: 'invalid_api_key' });
      }
      const required = scopeNames[request.requiredScope];
      if (!required) throw invalidRequest('required_scope must be inference or management.', { param: 'required_scope' });

      const digest = hashApiKey(pepper, parsed.full);
      const found = await store.findKeyForAuth(digest.toString('hex'), request.endpoint);
      if (!found || !hashMatches(found.key.keyHash, digest) || found.project.slug !== parsed.projectSlug) {
        throw unauthenticated('Invalid API key.', { code: 'invalid_api_key' });
      }
      const { key, project } = found;
      const t = now();
      if (key.revokedAt !== null) throw unauthenticated('This API key has been revoked.', { code: 'invalid_api_key' });
      if (key.expiresAt !== null && key.expiresAt <= t) {
        throw unauthenticated('This API key has expired.', { code: 'invalid_api_key' });
      }
      if (key.graceExpiresAt !== null && key.graceExpiresAt <= t) {
        throw unauthenticated('This API key was rotated and its grace period has ended.', { code: 'invalid_api_key' });
      }

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
          scopes: key.scopes.map((s) => scopeValues[s]),
        },
      };
    },

    async createProject(request, context) {
      const slug = validSlug(request.slug, 'slug');
      const project: ProjectRow = { id: newId('proj'), slug, name: validName(request.name, 'name', slug), createdAt: now() };
      try {
        await store.insertProject(project);
      } catch (err) {
        if (err instanceof UniqueViolationError) {
          throw invalidRequest(`Project '${slug}' already exists.`, { code: 'project_exists', param: 'slug' });
        }
        throw err;
      }
      (context?.logger ?? rootLogger).info({ projectId: project.id, slug }, 'project created');
      return { project: toProjectMessage(project) };
    },

    async listProjects() {
      return { projects: (await store.listProjects()).map(toProjectMessage) };
    },

    async createEndpoint(request, context) {
      const project = await projectOf(request.project);
      const slug = validSlug(request.slug, 'slug');
      const tier = tiers.get(request.tier);
      if (!tier) {
        throw invalidRequest(`Unknown tier; expected one of: ${[...tiers.keys()].join(', ')}.`, { param: 'tier' });
      }
      if (!MODEL_NAME.test(request.model)) {
        throw invalidRequest('model must be 1-200 characters of letters, digits and ._:/@+-', { param: 'model' });
      }
      const pool = request.hardwarePool === '' ? tier.pools[0] : request.hardwarePool;
      if (pool === undefined || !POOL_NAME.test(pool) || !tier.pools.includes(pool)) {
        throw invalidRequest(`hardware_pool must be one of the tier's pools: ${tier.pools.join(', ')}.`, {
          param: 'hardware_pool',
        });
      }
      const contextWindow = request.contextWindow === 0 ? DEFAULT_CONTEXT_WINDOW : request.contextWindow;
      if (!Number.isInteger(contextWindow) || contextWindow < 1 || contextWindow > MAX_CONTEXT_WINDOW) {
        throw invalidRequest(`context_window must be between 1 and ${MAX_CONTEXT_WINDOW}.`, { param: 'context_window' });
      }
      const endpoint: EndpointRow = {
        id: newId('ep'),
        projectId: project.id,
        slug,
        tier: tier.slug,
        model: request.model,
        hardwarePool: pool,
        contextWindow,
        active: true,
        createdAt: now(),
      };
      try {
        await store.insertEndpoint(endpoint);
      } catch (err) {
        if (err instanceof UniqueViolationError) {
          throw invalidRequest(`Endpoint '${slug}' already exists in project '${project.slug}'.`, {
            code: 'endpoint_exists',
            param: 'slug',
          });
        }
        throw err;
      }
      (context?.logger ?? rootLogger).info({ projectId: project.id, endpoint: slug, tier: tier.slug }, 'endpoint created');
      return { endpoint: toEndpointMessage(endpoint) };
    },

    async listEndpoints(request) {
      const project = await projectOf(request.project);
      return { endpoints: (await store.listEndpoints(project.id)).map(toEndpointMessage) };
    },

    async setEndpointActive(request, context) {
      const project = await projectOf(request.project);
      const endpoint = await store.setEndpointActive(project.id, request.endpoint, request.active);
      if (!endpoint) throw notFound(`Endpoint ${quoted(request.endpoint)} not found.`, { code: 'endpoint_not_found' });
      (context?.logger ?? rootLogger).info({ projectId: project.id, endpoint: endpoint.slug, active: endpoint.active }, 'endpoint updated');
      return { endpoint: toEndpointMessage(endpoint) };
    },

    async createApiKey(request, context) {
      const project = await projectOf(request.project);
      const name = validName(request.name, 'name', 'default');
      const scopes = validScopes(request.scopes);
      let endpointId: string | null = null;
      if (request.endpointSlug !== '') {
        const endpoint = await store.findEndpoint(project.id, request.endpointSlug);
        if (!endpoint) {
          throw notFound(`Endpoint ${quoted(request.endpointSlug)} not found.`, { code: 'endpoint_not_found', param: 'endpoint' });
        }
        endpointId = endpoint.id;
      }
      let expiresAt: number | null = null;
      if (request.expireTime !== undefined) {
        expiresAt = request.expireTime.getTime();
        if (!Number.isFinite(expiresAt) || expiresAt <= now()) {
          throw invalidRequest('expires_at must be in the future.', { param: 'expires_at' });
        }
      }
      const { row, secret } = mintKey(project, { name, scopes, endpointId, expiresAt, rotatedFromKeyId: null });
      await store.insertApiKey(row);
      (context?.logger ?? rootLogger).info({ projectId: project.id, keyId: row.id, prefix: row.prefix, scopes }, 'api key created');
      const created = await existingKey(project, row.id);
      return { apiKey: toApiKeyMessage(created), secret };
    },

    async listApiKeys(request) {
      const project = await projectOf(request.project);
      const limit = request.pageSize === 0 ? DEFAULT_PAGE_SIZE : request.pageSize;
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
        throw invalidRequest(`page_size must be between 1 and ${MAX_PAGE_SIZE}.`, { param: 'limit' });
      }
      let after: ApiKeyRow | undefined;
      if (request.after !== '') {
        after = await store.getApiKey(project.id, request.after);
        if (!after) throw invalidRequest('after must be the id of a key of this project.', { param: 'after' });
      }
      const page = await store.listApiKeys(project.id, { limit, after });
      return { apiKeys: page.keys.map(toApiKeyMessage), hasMore: page.hasMore };
    },

    async getApiKey(request) {
      const project = await projectOf(request.project);
      return { apiKey: toApiKeyMessage(await existingKey(project, request.keyId)) };
    },

    async revokeApiKey(request, context) {
      const project = await projectOf(request.project);
      await existingKey(project, request.keyId);
      const key = await store.revokeApiKey(project.id, request.keyId, now());
      if (!key) throw notFound('API key not found.', { code: 'api_key_not_found', param: 'key_id' });
      (context?.logger ?? rootLogger).info({ projectId: project.id, keyId: key.id, prefix: key.prefix }, 'api key revoked');
      return { apiKey: toApiKeyMessage(key) };
    },

    async rotateApiKey(request, context) {
      const project = await projectOf(request.project);
      const old = await existingKey(project, request.keyId);
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
        { projectId: project.id, keyId: row.id, prefix: row.prefix, previousKeyId: old.id, graceSeconds },
        'api key rotated',
      );
      const [fresh, previous] = await Promise.all([existingKey(project, row.id), existingKey(project, old.id)]);
      return { apiKey: toApiKeyMessage(fresh), secret, previousApiKey: toApiKeyMessage(previous) };
    },
  };
}
