/** Join keys and self-hosted workers on Kysely (both dialects); no policy. */
import type { Kysely, Selectable } from 'kysely';
import type { AuthDatabase, JoinKeysTable, SelfHostedWorkersTable } from './database.js';
import { guardUnique } from './database.js';
import type { JoinKeyRow, StoredWorkerState, WorkerLookup, WorkerRow, WorkerStore } from './worker-store.js';

const nullableNumber = (v: number | null): number | null => (v === null ? null : Number(v));
const STATES: readonly StoredWorkerState[] = ['enrolling', 'online', 'draining', 'offline'];
const toState = (s: string): StoredWorkerState => STATES.find((x) => x === s) ?? 'offline';

const toJoinKey = (r: Selectable<JoinKeysTable>): JoinKeyRow => ({
  id: r.id,
  projectId: r.project_id,
  name: r.name,
  prefix: r.prefix,
  keyHash: r.key_hash,
  maxUses: Number(r.max_uses),
  useCount: Number(r.use_count),
  expiresAt: nullableNumber(r.expires_at),
  revokedAt: nullableNumber(r.revoked_at),
  createdAt: Number(r.created_at),
});

const toWorker = (r: Selectable<SelfHostedWorkersTable>): WorkerRow => ({
  id: r.id,
  projectId: r.project_id,
  joinKeyId: r.join_key_id,
  name: r.name,
  credentialHash: r.credential_hash,
  credentialExpiresAt: Number(r.credential_expires_at),
  model: r.model,
  state: toState(r.state),
  lastSeenAt: nullableNumber(r.last_seen_at),
  revokedAt: nullableNumber(r.revoked_at),
  createdAt: Number(r.created_at),
});

export function workerQueries(db: Kysely<AuthDatabase>): WorkerStore {
  const getJoinKey = async (projectId: string, id: string): Promise<JoinKeyRow | undefined> => {
    const row = await db.selectFrom('join_keys').selectAll().where('project_id', '=', projectId).where('id', '=', id).executeTakeFirst();
    return row ? toJoinKey(row) : undefined;
  };
  /** Workers with their join key and project slug, narrowed by `where`. */
  const lookups = async (filter: { credentialHash?: string; projectId?: string; id?: string }): Promise<WorkerLookup[]> => {
    let q = db
      .selectFrom('self_hosted_workers as w')
      .innerJoin('join_keys as j', 'j.id', 'w.join_key_id')
      .innerJoin('projects as p', 'p.id', 'w.project_id')
      .selectAll('w')
      .select([
        'j.id as j_id',
        'j.project_id as j_project_id',
        'j.name as j_name',
        'j.prefix as j_prefix',
        'j.key_hash as j_key_hash',
        'j.max_uses as j_max_uses',
        'j.use_count as j_use_count',
        'j.expires_at as j_expires_at',
        'j.revoked_at as j_revoked_at',
        'j.created_at as j_created_at',
        'p.slug as p_slug',
      ]);
    if (filter.credentialHash !== undefined) q = q.where('w.credential_hash', '=', filter.credentialHash);
    if (filter.projectId !== undefined) q = q.where('w.project_id', '=', filter.projectId);
    if (filter.id !== undefined) q = q.where('w.id', '=', filter.id);
    const rows = await q.orderBy('w.created_at', 'desc').orderBy('w.id', 'desc').execute();
    return rows.map((r) => ({
      worker: toWorker(r),
      joinKey: toJoinKey({
        id: r.j_id,
        project_id: r.j_project_id,
        name: r.j_name,
        prefix: r.j_prefix,
        key_hash: r.j_key_hash,
        max_uses: r.j_max_uses,
        use_count: r.j_use_count,
        expires_at: r.j_expires_at,
        revoked_at: r.j_revoked_at,
        created_at: r.j_created_at,
      }),
      projectSlug: r.p_slug,
    }));
  };

  return {
    async insertJoinKey(k) {
      await guardUnique(() =>
        db
          .insertInto('join_keys')
          .values({
            id: k.id,
            project_id: k.projectId,
            name: k.name,
            prefix: k.prefix,
            key_hash: k.keyHash,
            max_uses: k.maxUses,
            use_count: k.useCount,
            expires_at: k.expiresAt,
            revoked_at: k.revokedAt,
            created_at: k.createdAt,
          })
          .execute(),
      );
    },
    async listJoinKeys(projectId) {
      const rows = await db
        .selectFrom('join_keys')
        .selectAll()
        .where('project_id', '=', projectId)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .execute();
      return rows.map(toJoinKey);
    },
    getJoinKey,
    async revokeJoinKey(projectId, id, now) {
      await db
        .updateTable('join_keys')
        .set({ revoked_at: now })
        .where('project_id', '=', projectId)
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .execute();
      return getJoinKey(projectId, id);
    },
    async findJoinKeyByHash(keyHash) {
      const row = await db.selectFrom('join_keys').selectAll().where('key_hash', '=', keyHash).executeTakeFirst();
      return row ? toJoinKey(row) : undefined;
    },
    async enrollWorker(joinKeyId, now, w) {
      return db.transaction().execute(async (tx) => {
        // One conditional update is the use: two enrollments racing for the last use cannot both win.
        const taken = await tx
          .updateTable('join_keys')
          .set((eb) => ({ use_count: eb('use_count', '+', 1) }))
          .where('id', '=', joinKeyId)
          .where('revoked_at', 'is', null)
          .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
          .where((eb) => eb.or([eb('max_uses', '=', 0), eb('use_count', '<', eb.ref('max_uses'))]))
          .executeTakeFirst();
        if (Number(taken.numUpdatedRows) !== 1) return false;
        await tx
          .insertInto('self_hosted_workers')
          .values({
            id: w.id,
            project_id: w.projectId,
            join_key_id: w.joinKeyId,
            name: w.name,
            credential_hash: w.credentialHash,
            credential_expires_at: w.credentialExpiresAt,
            model: w.model,
            state: w.state,
            last_seen_at: w.lastSeenAt,
            revoked_at: w.revokedAt,
            created_at: w.createdAt,
          })
          .execute();
        return true;
      });
    },
    async findWorkerByCredential(credentialHash) {
      return (await lookups({ credentialHash }))[0];
    },
    async recordWorkerState(workerId, state, model, now) {
      await db
        .updateTable('self_hosted_workers')
        .set({ last_seen_at: now, ...(state === undefined ? {} : { state }), ...(model === '' ? {} : { model }) })
        .where('id', '=', workerId)
        .execute();
    },
    async setCredentialExpiry(workerId, expiresAt) {
      await db.updateTable('self_hosted_workers').set({ credential_expires_at: expiresAt }).where('id', '=', workerId).execute();
    },
    listWorkers: (projectId) => lookups({ projectId }),
    async getWorker(projectId, id) {
      return (await lookups({ projectId, id }))[0];
    },
    async revokeWorker(projectId, id, now) {
      await db
        .updateTable('self_hosted_workers')
        .set({ revoked_at: now })
        .where('project_id', '=', projectId)
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .execute();
    },
  };
}
