/**
 * Persistence of join keys and self-hosted workers (the store half of services/auth/src/workers/).
 * Times are epoch milliseconds; secrets are stored only as hex HMAC digests. No policy here.
 */

export interface JoinKeyRow {
  id: string;
  projectId: string;
  name: string;
  prefix: string;
  keyHash: string;
  /** 0 = unlimited. */
  maxUses: number;
  useCount: number;
  expiresAt: number | null;
  revokedAt: number | null;
  createdAt: number;
}

export type StoredWorkerState = 'enrolling' | 'online' | 'draining' | 'offline';

export interface WorkerRow {
  id: string;
  projectId: string;
  joinKeyId: string;
  name: string;
  credentialHash: string;
  credentialExpiresAt: number;
  model: string;
  state: StoredWorkerState;
  lastSeenAt: number | null;
  revokedAt: number | null;
  createdAt: number;
}

/** A worker with what decides whether its credential works. */
export interface WorkerLookup {
  worker: WorkerRow;
  joinKey: JoinKeyRow;
  projectSlug: string;
}

export interface WorkerStore {
  insertJoinKey(key: JoinKeyRow): Promise<void>;
  listJoinKeys(projectId: string): Promise<JoinKeyRow[]>;
  getJoinKey(projectId: string, id: string): Promise<JoinKeyRow | undefined>;
  /** Sets revoked_at once (idempotent); undefined when no such key in the project. */
  revokeJoinKey(projectId: string, id: string, now: number): Promise<JoinKeyRow | undefined>;
  findJoinKeyByHash(keyHash: string): Promise<JoinKeyRow | undefined>;
  /**
   * Atomically takes one use of the join key (still working at `now` and under its limit) and
   * inserts the worker. Returns false, changing nothing, when the key cannot be used.
   */
  enrollWorker(joinKeyId: string, now: number, worker: WorkerRow): Promise<boolean>;
  findWorkerByCredential(credentialHash: string): Promise<WorkerLookup | undefined>;
  /** Records a heartbeat: state, model (unless empty) and last_seen_at. */
  recordWorkerState(workerId: string, state: StoredWorkerState | undefined, model: string, now: number): Promise<void>;
  setCredentialExpiry(workerId: string, expiresAt: number): Promise<void>;
  listWorkers(projectId: string): Promise<WorkerLookup[]>;
  getWorker(projectId: string, id: string): Promise<WorkerLookup | undefined>;
  revokeWorker(projectId: string, id: string, now: number): Promise<void>;
}
