/**
 * The auth database seen through Kysely: table shapes and recognising a unique violation of
 * either dialect (opening it: lib/db/kysely.ts). Everything else is one query code path.
 */
import { UniqueViolationError } from './store.js';

export interface ProjectsTable {
  id: string;
  slug: string;
  name: string;
  created_at: number;
}

export interface EndpointsTable {
  id: string;
  project_id: string;
  slug: string;
  tier: string;
  model: string;
  hardware_pool: string;
  context_window: number;
  active: number;
  /** 'chat' | 'embeddings' (lib/auth/endpoint-kinds.ts). */
  kind: string;
  created_at: number;
}

export interface ApiKeysTable {
  id: string;
  project_id: string;
  name: string;
  prefix: string;
  key_hash: string;
  /** Scope names joined by ',' in canonical order, e.g. 'inference,management'. */
  scopes: string;
  endpoint_id: string | null;
  expires_at: number | null;
  revoked_at: number | null;
  rotated_from_key_id: string | null;
  grace_expires_at: number | null;
  created_at: number;
  last_used_at: number | null;
}

export interface JoinKeysTable {
  id: string;
  project_id: string;
  name: string;
  prefix: string;
  key_hash: string;
  /** 0 = unlimited. */
  max_uses: number;
  use_count: number;
  expires_at: number | null;
  revoked_at: number | null;
  created_at: number;
}

export interface SelfHostedWorkersTable {
  id: string;
  project_id: string;
  join_key_id: string;
  name: string;
  credential_hash: string;
  credential_expires_at: number;
  model: string;
  /** 'enrolling' | 'online' | 'draining' | 'offline' as last reported. */
  state: string;
  last_seen_at: number | null;
  revoked_at: number | null;
  created_at: number;
}

export interface AuthDatabase {
  projects: ProjectsTable;
  endpoints: EndpointsTable;
  api_keys: ApiKeysTable;
  join_keys: JoinKeysTable;
  self_hosted_workers: SelfHostedWorkersTable;
}

export type { StoreLocation } from '../../../../lib/db/kysely.js';

function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** Runs a write; a unique-constraint failure of either dialect becomes UniqueViolationError. */
export async function guardUnique<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (isUniqueViolation(err)) throw new UniqueViolationError(err);
    throw err;
  }
}
