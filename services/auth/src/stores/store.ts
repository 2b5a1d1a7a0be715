/**
 * AuthStore: persistence of projects, endpoints and API keys. One implementation
 * (kysely-store.ts) serves SQLite and PostgreSQL; the service holds all policy, the store none.
 * Times are epoch milliseconds. Key hashes are hex HMAC digests; the store never sees a key.
 */
import type { EndpointKindName } from '../../../../lib/auth/endpoint-kinds.js';
import type { ScopeName } from '../../../../lib/auth/scopes.js';
import type { WorkerStore } from './worker-store.js';

export interface ProjectRow {
  id: string;
  slug: string;
  name: string;
  createdAt: number;
}

export interface EndpointRow {
  id: string;
  projectId: string;
  slug: string;
  tier: string;
  model: string;
  hardwarePool: string;
  contextWindow: number;
  active: boolean;
  /** What the endpoint serves. */
  kind: EndpointKindName;
  createdAt: number;
}

export interface ApiKeyRow {
  id: string;
  projectId: string;
  name: string;
  prefix: string;
  keyHash: string;
  scopes: ScopeName[];
  /** Endpoint the key is bound to; null = any endpoint of the project. */
  endpointId: string | null;
  /** Slug of the bound endpoint (joined); null when unbound. */
  endpointSlug: string | null;
  expiresAt: number | null;
  revokedAt: number | null;
  rotatedFromKeyId: string | null;
  /** End of the grace period once a rotation replaced this key. */
  graceExpiresAt: number | null;
  createdAt: number;
  lastUsedAt: number | null;
}

export type NewApiKeyRow = Omit<ApiKeyRow, 'endpointSlug' | 'revokedAt' | 'graceExpiresAt' | 'lastUsedAt'>;

/** Everything Authenticate needs, in one round trip. */
export interface AuthLookup {
  key: ApiKeyRow;
  project: ProjectRow;
  /** The endpoint addressed by the request, if it exists in the key's project. */
  endpoint: EndpointRow | undefined;
}

/**
 * Narrows a key listing to the keys an actor key may manage (the service decides the values):
 * every condition must hold.
 */
export interface KeyReachFilter {
  /** Only keys whose scopes are all among these. */
  scopes: ScopeName[];
  /** Only keys bound to this endpoint id; null = bound or not, to any endpoint. */
  endpointId: string | null;
  /** Only keys that stop working (expiry or end of a rotation grace) at or before this time; null = any. */
  endsBy: number | null;
}

export interface KeyPage {
  keys: ApiKeyRow[];
  hasMore: boolean;
}

/** A unique constraint refused an insert (duplicate slug, id or hash). */
export class UniqueViolationError extends Error {
  constructor(cause: unknown) {
    super('unique constraint violated', { cause });
    this.name = 'UniqueViolationError';
  }
}

export interface AuthStore extends WorkerStore {
  /** Which database backs the store (for logs and tests). */
  readonly dialect: 'sqlite' | 'postgres';

  /** Project by id (`proj_…`) or slug; exact, case-sensitive match. */
  findProject(idOrSlug: string): Promise<ProjectRow | undefined>;
  listProjects(): Promise<ProjectRow[]>;
  /** @throws UniqueViolationError on a duplicate slug. */
  insertProject(project: ProjectRow): Promise<void>;

  findEndpoint(projectId: string, slug: string): Promise<EndpointRow | undefined>;
  listEndpoints(projectId: string): Promise<EndpointRow[]>;
  /** @throws UniqueViolationError on a duplicate slug within the project. */
  insertEndpoint(endpoint: EndpointRow): Promise<void>;
  setEndpointActive(projectId: string, slug: string, active: boolean): Promise<EndpointRow | undefined>;
  /** Sets the endpoint's model; undefined when there is no such endpoint. */
  setEndpointModel(projectId: string, slug: string, model: string): Promise<EndpointRow | undefined>;

  /** The key with this hash, its project and the addressed endpoint (slug may be empty). */
  findKeyForAuth(keyHash: string, endpointSlug: string): Promise<AuthLookup | undefined>;
  insertApiKey(key: NewApiKeyRow): Promise<void>;
  getApiKey(projectId: string, keyId: string): Promise<ApiKeyRow | undefined>;
  /** The key with this id, whatever its project. */
  findApiKey(keyId: string): Promise<ApiKeyRow | undefined>;
  /** Keys ordered by (creation, id); `after` is the last key of the previous page. */
  listApiKeys(
    projectId: string,
    options: { limit: number; after?: ApiKeyRow | undefined; within?: KeyReachFilter | undefined },
  ): Promise<KeyPage>;
  /** Sets revoked_at once (idempotent); undefined when no such key in the project. */
  revokeApiKey(projectId: string, keyId: string, now: number): Promise<ApiKeyRow | undefined>;
  /**
   * Atomically gives the old key its grace end and inserts the new key. Returns false (and
   * changes nothing) if the old key is revoked or was already rotated in the meantime.
   */
  rotateApiKey(projectId: string, oldKeyId: string, graceExpiresAt: number, newKey: NewApiKeyRow): Promise<boolean>;
  /** Records a successful use, unless one was recorded less than `minIntervalMs` ago. */
  touchApiKey(keyId: string, now: number, minIntervalMs: number): Promise<void>;

  /** One round trip to the database (health checks); rejects when it is unreachable. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
