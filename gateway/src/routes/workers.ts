/**
 * Self-hosted workers API: `/{project}/v1/workers` (list; `DELETE …/{id}` revokes) and
 * `/{project}/v1/workers/join-keys` (create, list, revoke). Every route authenticates the bearer
 * key with the management scope for the URL's project, then acts as that key through the auth
 * service's WorkerService. A join key's secret is shown once, at creation. Responses are
 * snake_case, times in unix seconds.
 */
import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import { Scope } from '../../../gen/xerotier/auth/v1/auth_service.js';
import type { JoinKey, SelfHostedWorker } from '../../../gen/xerotier/workers/v1/worker_service.js';
import { workerStateName } from '../../../lib/workers/states.js';
import { AppError } from '../../../lib/errors/app-error.js';
import { bearerKey } from '../bearer.js';
import type { WorkersPort } from '../fleet/tunnel/workers-port.js';
import type { AuthPort } from '../upstreams.js';
import { parseBody } from './management.js';

export interface WorkersRouteDeps {
  auth: AuthPort;
  workers: WorkersPort;
}

const unix = (d: Date | undefined): number | null => (d === undefined ? null : Math.floor(d.getTime() / 1000));

export function joinKeyObject(k: JoinKey) {
  return {
    id: k.id,
    object: 'worker.join_key' as const,
    name: k.name,
    prefix: k.prefix,
    max_uses: k.maxUses === 0 ? null : k.maxUses,
    uses: k.useCount,
    expires_at: unix(k.expireTime),
    revoked: k.revoked,
    created_at: unix(k.createTime),
  };
}

export function workerObject(w: SelfHostedWorker) {
  return {
    id: w.id,
    object: 'worker' as const,
    name: w.name,
    state: workerStateName(w.state),
    model: w.model === '' ? null : w.model,
    join_key_id: w.joinKeyId,
    last_seen_at: unix(w.lastSeenTime),
    credential_expires_at: unix(w.credentialExpireTime),
    created_at: unix(w.createTime),
  };
}

const createBody = z
  .object({
    name: z.string().trim().min(1).max(100).optional(),
    // null or omitted = unlimited enrollments.
    max_uses: z.number().int().min(1).max(1_000_000).nullable().optional(),
    // Unix seconds; omitted = 7 days from now, at most 365 days.
    expires_at: z.number().int().positive().optional(),
  })
  .strict();

export function workersRouter(deps: WorkersRouteDeps): express.Router {
  const router = express.Router({ mergeParams: true });
  const requestId = (res: Response): string => String(res.locals['requestId'] ?? 'none');

  async function actorOf(req: Request, res: Response): Promise<{ project: string; actorKeyId: string }> {
    const principal = await deps.auth.authenticate(
      { apiKey: bearerKey(req), project: String(req.params['project'] ?? ''), endpoint: '', scope: Scope.SCOPE_MANAGEMENT },
      requestId(res),
    );
    const project = principal.project?.id;
    if (!project) throw new AppError('internal', 'auth returned no project');
    res.set('cache-control', 'no-store');
    return { project, actorKeyId: principal.keyId };
  }
  const present = <T>(v: T | undefined): T => {
    if (v === undefined) throw new AppError('internal', 'auth returned an empty answer');
    return v;
  };

  router.get('/join-keys', async (req, res) => {
    const actor = await actorOf(req, res);
    const listed = await deps.workers.call(requestId(res), (c, o) => c.listJoinKeys(actor, o));
    res.json({ object: 'list', data: listed.joinKeys.map(joinKeyObject) });
  });

  router.post('/join-keys', async (req, res) => {
    const actor = await actorOf(req, res);
    const body = parseBody(createBody, req.body);
    const created = await deps.workers.call(requestId(res), (c, o) =>
      c.createJoinKey(
        {
          ...actor,
          name: body.name ?? '',
          maxUses: body.max_uses ?? 0,
          expireTime: body.expires_at === undefined ? undefined : new Date(body.expires_at * 1000),
        },
        o,
      ),
    );
    res.status(201).json({ ...joinKeyObject(present(created.joinKey)), key: created.secret });
  });

  router.delete('/join-keys/:id', async (req, res) => {
    const actor = await actorOf(req, res);
    const revoked = await deps.workers.call(requestId(res), (c, o) =>
      c.revokeJoinKey({ ...actor, joinKeyId: String(req.params['id'] ?? '') }, o),
    );
    res.json(joinKeyObject(present(revoked.joinKey)));
  });

  router.get('/', async (req, res) => {
    const actor = await actorOf(req, res);
    const listed = await deps.workers.call(requestId(res), (c, o) => c.listWorkers(actor, o));
    res.json({ object: 'list', data: listed.workers.map(workerObject) });
  });

  router.delete('/:id', async (req, res) => {
    const actor = await actorOf(req, res);
    const revoked = await deps.workers.call(requestId(res), (c, o) =>
      c.revokeWorker({ ...actor, workerId: String(req.params['id'] ?? '') }, o),
    );
    res.json(workerObject(present(revoked.worker)));
  });

  return router;
}
