/** API keys on Kysely (both dialects): lookups, paging, revocation and rotation; no policy. */
import type { Kysely, Selectable } from 'kysely';
import { SCOPE_NAMES, canonicalScopes, isScopeName, type ScopeName } from '../../../../lib/auth/scopes.js';
import { guardUnique, type ApiKeysTable, type AuthDatabase } from './database.js';
import { toEndpoint, toProject } from './project-queries.js';
import type { ApiKeyRow, AuthLookup, AuthStore, KeyPage, NewApiKeyRow } from './store.js';

export type KeyQueries = Pick<
  AuthStore,
  'findKeyForAuth' | 'insertApiKey' | 'getApiKey' | 'findApiKey' | 'listApiKeys' | 'revokeApiKey' | 'rotateApiKey' | 'touchApiKey'
>;

const parseScopes = (s: string): ScopeName[] => canonicalScopes(s.split(',').filter(isScopeName));
const joinScopes = (scopes: ScopeName[]): string => canonicalScopes(scopes).join(',');
const nullableNumber = (v: number | null): number | null => (v === null ? null : Number(v));

/** Every stored `scopes` value that is a non-empty subset of `scopes` (stored canonically). */
function storedSubsets(scopes: ScopeName[]): string[] {
  const held = SCOPE_NAMES.filter((n) => scopes.includes(n));
  const subsets: string[] = [];
  for (let mask = 1; mask < 1 << held.length; mask++) {
    subsets.push(held.filter((_, i) => (mask >> i) & 1).join(','));
  }
  return subsets;
}

const toKey = (r: Selectable<ApiKeysTable> & { endpoint_slug: string | null }): ApiKeyRow => ({
  id: r.id,
  projectId: r.project_id,
  name: r.name,
  prefix: r.prefix,
  keyHash: r.key_hash,
  scopes: parseScopes(r.scopes),
  endpointId: r.endpoint_id,
  endpointSlug: r.endpoint_slug,
  expiresAt: nullableNumber(r.expires_at),
  revokedAt: nullableNumber(r.revoked_at),
  rotatedFromKeyId: r.rotated_from_key_id,
  graceExpiresAt: nullableNumber(r.grace_expires_at),
  createdAt: Number(r.created_at),
  lastUsedAt: nullableNumber(r.last_used_at),
});

const keyColumns = [
  'k.id',
  'k.project_id',
  'k.name',
  'k.prefix',
  'k.key_hash',
  'k.scopes',
  'k.endpoint_id',
  'k.expires_at',
  'k.revoked_at',
  'k.rotated_from_key_id',
  'k.grace_expires_at',
  'k.created_at',
  'k.last_used_at',
  'be.slug as endpoint_slug',
] as const;

function keyValues(k: NewApiKeyRow): ApiKeysTable {
  return {
    id: k.id,
    project_id: k.projectId,
    name: k.name,
    prefix: k.prefix,
    key_hash: k.keyHash,
    scopes: joinScopes(k.scopes),
    endpoint_id: k.endpointId,
    expires_at: k.expiresAt,
    revoked_at: null,
    rotated_from_key_id: k.rotatedFromKeyId,
    grace_expires_at: null,
    created_at: k.createdAt,
    last_used_at: null,
  };
}

export function keyQueries(db: Kysely<AuthDatabase>): KeyQueries {
  const selectKeys = () => db.selectFrom('api_keys as k').leftJoin('endpoints as be', 'be.id', 'k.endpoint_id').select(keyColumns);

  const getApiKey = async (projectId: string, keyId: string): Promise<ApiKeyRow | undefined> => {
    const row = await selectKeys().where('k.project_id', '=', projectId).where('k.id', '=', keyId).executeTakeFirst();
    return row ? toKey(row) : undefined;
  };

  return {
    async findKeyForAuth(keyHash, endpointSlug) {
      const row = await db
        .selectFrom('api_keys as k')
        .innerJoin('projects as p', 'p.id', 'k.project_id')
        .leftJoin('endpoints as be', 'be.id', 'k.endpoint_id')
        .leftJoin('endpoints as re', (join) =>
          join.onRef('re.project_id', '=', 'k.project_id').on('re.slug', '=', endpointSlug),
        )
        .select(keyColumns)
        .select([
          'p.id as p_id',
          'p.slug as p_slug',
          'p.name as p_name',
          'p.created_at as p_created_at',
          're.id as re_id',
          're.project_id as re_project_id',
          're.slug as re_slug',
          're.tier as re_tier',
          're.model as re_model',
          're.hardware_pool as re_hardware_pool',
          're.context_window as re_context_window',
          're.active as re_active',
          're.kind as re_kind',
          're.created_at as re_created_at',
        ])
        .where('k.key_hash', '=', keyHash)
        .executeTakeFirst();
      if (!row) return undefined;
      const lookup: AuthLookup = {
        key: toKey(row),
        project: toProject({ id: row.p_id, slug: row.p_slug, name: row.p_name, created_at: row.p_created_at }),
        endpoint: undefined,
      };
      if (
        row.re_id !== null &&
        row.re_project_id !== null &&
        row.re_slug !== null &&
        row.re_tier !== null &&
        row.re_model !== null &&
        row.re_hardware_pool !== null &&
        row.re_context_window !== null &&
        row.re_active !== null &&
        row.re_kind !== null &&
        row.re_created_at !== null
      ) {
        lookup.endpoint = toEndpoint({
          id: row.re_id,
          project_id: row.re_project_id,
          slug: row.re_slug,
          tier: row.re_tier,
          model: row.re_model,
          hardware_pool: row.re_hardware_pool,
          context_window: row.re_context_window,
          active: row.re_active,
          kind: row.re_kind,
          created_at: row.re_created_at,
        });
      }
      return lookup;
    },

    async insertApiKey(k) {
      await guardUnique(() => db.insertInto('api_keys').values(keyValues(k)).execute());
    },

    getApiKey,

    async findApiKey(keyId) {
      const row = await selectKeys().where('k.id', '=', keyId).executeTakeFirst();
      return row ? toKey(row) : undefined;
    },

    async listApiKeys(projectId, { limit, after, within }): Promise<KeyPage> {
      let q = selectKeys().where('k.project_id', '=', projectId);
      if (within) {
        const scopeSets = storedSubsets(within.scopes);
        if (scopeSets.length === 0) return { keys: [], hasMore: false };
        q = q.where('k.scopes', 'in', scopeSets);
        if (within.endpointId !== null) q = q.where('k.endpoint_id', '=', within.endpointId);
        const { endsBy } = within;
        if (endsBy !== null) {
          // The key stops working (expiry or end of its rotation grace) no later than endsBy.
          q = q.where((eb) =>
            eb.or([
              eb.and([eb('k.expires_at', 'is not', null), eb('k.expires_at', '<=', endsBy)]),
              eb.and([eb('k.grace_expires_at', 'is not', null), eb('k.grace_expires_at', '<=', endsBy)]),
            ]),
          );
        }
      }
      if (after) {
        q = q.where((eb) =>
          eb.or([
            eb('k.created_at', '>', after.createdAt),
            eb.and([eb('k.created_at', '=', after.createdAt), eb('k.id', '>', after.id)]),
          ]),
        );
      }
      const rows = await q.orderBy('k.created_at').orderBy('k.id').limit(limit + 1).execute();
      return { keys: rows.slice(0, limit).map(toKey), hasMore: rows.length > limit };
    },

    async revokeApiKey(projectId, keyId, now) {
      await db
        .updateTable('api_keys')
        .set({ revoked_at: now })
        .where('project_id', '=', projectId)
        .where('id', '=', keyId)
        .where('revoked_at', 'is', null)
        .execute();
      return getApiKey(projectId, keyId);
    },

    async rotateApiKey(projectId, oldKeyId, graceExpiresAt, newKey) {
      return db.transaction().execute(async (trx) => {
        // Conditional update first: of two concurrent rotations, exactly one wins.
        const updated = await trx
          .updateTable('api_keys')
          .set({ grace_expires_at: graceExpiresAt })
          .where('project_id', '=', projectId)
          .where('id', '=', oldKeyId)
          .where('revoked_at', 'is', null)
          .where('grace_expires_at', 'is', null)
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) !== 1) return false;
        await guardUnique(() => trx.insertInto('api_keys').values(keyValues(newKey)).execute());
        return true;
      });
    },

    async touchApiKey(keyId, now, minIntervalMs) {
      await db
        .updateTable('api_keys')
        .set({ last_used_at: now })
        .where('id', '=', keyId)
        .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', now - minIntervalMs)]))
        .execute();
    },
  };
}
