/**
 * WorkerService: join keys, enrollment and self-hosted worker records (see the proto). Policy:
 *   - join keys are created, listed and revoked by the project's operator or by a working key of
 *     the project with the management scope (the gateway's management routes name it);
 *   - a join key enrolls into its own project only: the request names no project, so a credential
 *     or a key of another project can never enroll anywhere else;
 *   - a worker credential works while the worker and its join key are not revoked and the
 *     credential has not expired (join key expiry ends enrollment, not enrolled workers);
 *   - an online or draining worker without a heartbeat for OFFLINE_AFTER_MS is shown offline.
 */
import type { Logger } from 'pino';
import {
  WorkerState,
  type CheckWorkerRequest,
  type CheckWorkerResponse,
  type CreateJoinKeyRequest,
  type CreateJoinKeyResponse,
  type EnrollRequest,
  type EnrollResponse,
  type JoinKey,
  type ListJoinKeysRequest,
  type ListJoinKeysResponse,
  type ListWorkersRequest,
  type ListWorkersResponse,
  type RefreshCredentialRequest,
  type RefreshCredentialResponse,
  type RevokeJoinKeyRequest,
  type RevokeJoinKeyResponse,
  type RevokeWorkerRequest,
  type RevokeWorkerResponse,
  type SelfHostedWorker,
} from '../../../../gen/xerotier/workers/v1/worker_service.js';
import { invalidRequest, notFound, unauthenticated } from '../../../../lib/errors/app-error.js';
import { resolveActor } from '../key-reach.js';
import { findProjectOrThrow } from '../project-admin.js';
import type { AuthStore, ProjectRow } from '../stores/store.js';
import type { JoinKeyRow, StoredWorkerState, WorkerLookup } from '../stores/worker-store.js';
import { validName } from '../validation.js';
import { generateSecret, hashSecret, isSecretOf } from './secrets.js';
import { randomBytes } from 'node:crypto';

/** A worker whose gateway has not sent a heartbeat for this long is shown offline. */
export const OFFLINE_AFTER_MS = 10_000;
const DEFAULT_JOIN_KEY_LIFETIME_MS = 7 * 86_400_000;
const MAX_JOIN_KEY_LIFETIME_MS = 365 * 86_400_000;

export interface WorkerServiceOptions {
  store: AuthStore;
  pepper: string;
  /** Lifetime of a worker credential from enrollment or refresh. */
  credentialTtlMs: number;
  logger: Logger;
  now?: (() => number) | undefined;
}

/** The service as plain functions of the request (the nice-grpc implementation and the tests' subject). */
export interface WorkerService {
  createJoinKey(request: CreateJoinKeyRequest): Promise<CreateJoinKeyResponse>;
  listJoinKeys(request: ListJoinKeysRequest): Promise<ListJoinKeysResponse>;
  revokeJoinKey(request: RevokeJoinKeyRequest): Promise<RevokeJoinKeyResponse>;
  enroll(request: EnrollRequest): Promise<EnrollResponse>;
  checkWorker(request: CheckWorkerRequest): Promise<CheckWorkerResponse>;
  refreshCredential(request: RefreshCredentialRequest): Promise<RefreshCredentialResponse>;
  listWorkers(request: ListWorkersRequest): Promise<ListWorkersResponse>;
  revokeWorker(request: RevokeWorkerRequest): Promise<RevokeWorkerResponse>;
}

const optionalDate = (ms: number | null): Date | undefined => (ms === null ? undefined : new Date(ms));

function toJoinKeyMessage(k: JoinKeyRow): JoinKey {
  return {
    id: k.id,
    projectId: k.projectId,
    name: k.name,
    prefix: k.prefix,
    maxUses: k.maxUses,
    useCount: k.useCount,
    expireTime: optionalDate(k.expiresAt),
    revoked: k.revokedAt !== null,
    createTime: new Date(k.createdAt),
  };
}

const storedToProto: Record<StoredWorkerState, WorkerState> = {
  enrolling: WorkerState.WORKER_STATE_ENROLLING,
  online: WorkerState.WORKER_STATE_ONLINE,
  draining: WorkerState.WORKER_STATE_DRAINING,
  offline: WorkerState.WORKER_STATE_OFFLINE,
};

function protoToStored(state: WorkerState): StoredWorkerState | undefined {
  switch (state) {
    case WorkerState.WORKER_STATE_ENROLLING:
      return 'enrolling';
    case WorkerState.WORKER_STATE_ONLINE:
      return 'online';
    case WorkerState.WORKER_STATE_DRAINING:
      return 'draining';
    case WorkerState.WORKER_STATE_OFFLINE:
      return 'offline';
    default:
      return undefined;
  }
}

/** The state a listing shows: revocation first, then a missing heartbeat. */
export function effectiveState(l: WorkerLookup, now: number): WorkerState {
  if (l.worker.revokedAt !== null || l.joinKey.revokedAt !== null) return WorkerState.WORKER_STATE_REVOKED;
  const s = l.worker.state;
  if ((s === 'online' || s === 'draining') && (l.worker.lastSeenAt ?? 0) + OFFLINE_AFTER_MS < now) {
    return WorkerState.WORKER_STATE_OFFLINE;
  }
  return storedToProto[s];
}

function toWorkerMessage(l: WorkerLookup, now: number): SelfHostedWorker {
  const w = l.worker;
  return {
    id: w.id,
    projectId: w.projectId,
    joinKeyId: w.joinKeyId,
    name: w.name,
    state: effectiveState(l, now),
    model: w.model,
    credentialExpireTime: new Date(w.credentialExpiresAt),
    lastSeenTime: optionalDate(w.lastSeenAt),
    createTime: new Date(w.createdAt),
  };
}

const badCredential = (message = 'Invalid worker credential.') => unauthenticated(message, { code: 'invalid_worker_credential' });
const badJoinKey = (message = 'Invalid join key.') => unauthenticated(message, { code: 'invalid_join_key' });

/** Why a join key cannot enroll now, or undefined when it can. */
function joinKeyUnusable(k: JoinKeyRow, now: number): string | undefined {
  if (k.revokedAt !== null) return 'This join key has been revoked.';
  if (k.expiresAt !== null && k.expiresAt <= now) return 'This join key has expired.';
  if (k.maxUses > 0 && k.useCount >= k.maxUses) return 'This join key has no enrollments left.';
  return undefined;
}

export function createWorkerService(options: WorkerServiceOptions): WorkerService {
  const { store, pepper } = options;
  const now = options.now ?? Date.now;

  /** The project of a call whose actor (if named) is a working management key of it. */
  async function projectFor(request: { project: string; actorKeyId?: string | undefined }): Promise<ProjectRow> {
    const project = await findProjectOrThrow(store, request.project);
    await resolveActor(store, project, request.actorKeyId, now());
    return project;
  }

  /** The worker behind a credential that works now. */
  async function workingWorker(credential: string): Promise<WorkerLookup> {
    if (!isSecretOf('xwc', credential)) throw badCredential(credential === '' ? 'Missing worker credential.' : undefined);
    const found = await store.findWorkerByCredential(hashSecret(pepper, credential));
    if (!found) throw badCredential();
    if (found.worker.revokedAt !== null) throw badCredential('This worker has been revoked.');
    if (found.joinKey.revokedAt !== null) throw badCredential("This worker's join key has been revoked.");
    if (found.worker.credentialExpiresAt <= now()) throw badCredential('This worker credential has expired.');
    return found;
  }

  async function workerOf(project: ProjectRow, id: string): Promise<WorkerLookup> {
    const found = id === '' ? undefined : await store.getWorker(project.id, id);
    if (!found) throw notFound('Worker not found.', { code: 'worker_not_found', param: 'worker_id' });
    return found;
  }

  return {
    async createJoinKey(request) {
      const project = await projectFor(request);
      const t = now();
      if (request.maxUses < 0 || request.maxUses > 1_000_000) {
        throw invalidRequest('max_uses must be between 0 (unlimited) and 1000000.', { param: 'max_uses' });
      }
      const expiresAt = request.expireTime === undefined ? t + DEFAULT_JOIN_KEY_LIFETIME_MS : request.expireTime.getTime();
      if (!(expiresAt > t) || expiresAt > t + MAX_JOIN_KEY_LIFETIME_MS) {
        throw invalidRequest('expires_at must be in the future and within 365 days.', { param: 'expires_at' });
      }
      const secret = generateSecret('xjk');
      const row: JoinKeyRow = {
        id: `jk_${randomBytes(12).toString('hex')}`,
        projectId: project.id,
        name: validName(request.name, 'name', 'join key'),
        prefix: secret.prefix,
        keyHash: hashSecret(pepper, secret.full),
        maxUses: request.maxUses,
        useCount: 0,
        expiresAt,
        revokedAt: null,
        createdAt: t,
      };
      await store.insertJoinKey(row);
      options.logger.info({ joinKeyId: row.id, project: project.slug, maxUses: row.maxUses }, 'join key created');
      return { joinKey: toJoinKeyMessage(row), secret: secret.full };
    },

    async listJoinKeys(request) {
      const project = await projectFor(request);
      return { joinKeys: (await store.listJoinKeys(project.id)).map(toJoinKeyMessage) };
    },

    async revokeJoinKey(request) {
      const project = await projectFor(request);
      const revoked = request.joinKeyId === '' ? undefined : await store.revokeJoinKey(project.id, request.joinKeyId, now());
      if (!revoked) throw notFound('Join key not found.', { code: 'join_key_not_found', param: 'join_key_id' });
      options.logger.info({ joinKeyId: revoked.id, project: project.slug }, 'join key revoked');
      return { joinKey: toJoinKeyMessage(revoked) };
    },

    async enroll(request) {
      if (!isSecretOf('xjk', request.joinKey)) throw badJoinKey(request.joinKey === '' ? 'Missing join key.' : undefined);
      const key = await store.findJoinKeyByHash(hashSecret(pepper, request.joinKey));
      if (!key) throw badJoinKey();
      const t = now();
      const unusable = joinKeyUnusable(key, t);
      if (unusable !== undefined) throw badJoinKey(unusable);
      if (request.model.length > 200) throw invalidRequest('model must be at most 200 characters.', { param: 'model' });
      const credential = generateSecret('xwc');
      const id = `wrk_${randomBytes(12).toString('hex')}`;
      const worker = {
        id,
        projectId: key.projectId,
        joinKeyId: key.id,
        name: validName(request.name, 'name', id),
        credentialHash: hashSecret(pepper, credential.full),
        credentialExpiresAt: t + options.credentialTtlMs,
        model: request.model,
        state: 'enrolling' as const,
        lastSeenAt: null,
        revokedAt: null,
        createdAt: t,
      };
      // The use is taken atomically: a key used up (or revoked) meanwhile enrolls nobody.
      if (!(await store.enrollWorker(key.id, t, worker))) throw badJoinKey('This join key has no enrollments left.');
      const enrolled = await store.getWorker(key.projectId, id);
      if (!enrolled) throw new Error('enrolled worker not found');
      options.logger.info({ workerId: id, joinKeyId: key.id, projectId: key.projectId }, 'self-hosted worker enrolled');
      return { worker: toWorkerMessage(enrolled, t), credential: credential.full, projectSlug: enrolled.projectSlug };
    },

    async checkWorker(request) {
      const found = await workingWorker(request.credential);
      const state = protoToStored(request.state);
      const t = now();
      if (state !== undefined || request.model !== '') {
        await store.recordWorkerState(found.worker.id, state, request.model, t);
        if (state !== undefined) found.worker.state = state;
        if (request.model !== '') found.worker.model = request.model;
        found.worker.lastSeenAt = t;
      }
      return { worker: toWorkerMessage(found, t) };
    },

    async refreshCredential(request) {
      const found = await workingWorker(request.credential);
      const expiresAt = now() + options.credentialTtlMs;
      await store.setCredentialExpiry(found.worker.id, expiresAt);
      return { credentialExpireTime: new Date(expiresAt) };
    },

    async listWorkers(request) {
      const project = await projectFor(request);
      const t = now();
      return { workers: (await store.listWorkers(project.id)).map((l) => toWorkerMessage(l, t)) };
    },

    async revokeWorker(request) {
      const project = await projectFor(request);
      const found = await workerOf(project, request.workerId);
      const t = now();
      await store.revokeWorker(project.id, found.worker.id, t);
      found.worker.revokedAt ??= t;
      options.logger.info({ workerId: found.worker.id, project: project.slug }, 'self-hosted worker revoked');
      return { worker: toWorkerMessage(found, t) };
    },
  };
}
