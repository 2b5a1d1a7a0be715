/**
 * Project management API: `/{project}/v1/management/api-keys[...]`. Mounted by app.ts with
 * `mergeParams`; body parsing and error rendering are the app's. Every route authenticates the
 * bearer key with the management scope for the URL's project through the auth port (breaker,
 * deadline, cache), then acts as that key: the auth service keeps each call within the key's
 * own scopes and endpoint binding. Responses are snake_case, times in unix seconds.
 */
import { bearerKey } from '../bearer.js';
import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import { Scope, type ApiKey } from '../../../gen/xerotier/auth/v1/auth_service.js';
import { expireTimeFromUnixSeconds, MAX_EXPIRES_AT_SECONDS } from '../../../lib/auth/expiry.js';
import { SCOPE_NAMES, scopeName, scopeValue, type ScopeName } from '../../../lib/auth/scopes.js';
import type { AuthPort } from '../upstreams.js';
import { AppError, invalidRequest } from '../../../lib/errors/app-error.js';

export interface ManagementDeps {
  auth: AuthPort;
}

const unix = (d: Date | undefined): number | null => (d === undefined ? null : Math.floor(d.getTime() / 1000));

/** The public shape of a key (never its secret). */
export function apiKeyObject(k: ApiKey) {
  return {
    id: k.id,
    object: 'api_key' as const,
    name: k.name,
    prefix: k.prefix,
    scopes: k.scopes.map(scopeName).filter((s): s is ScopeName => s !== undefined),
    endpoint: k.endpointSlug === '' ? null : k.endpointSlug,
    expires_at: unix(k.expireTime),
    revoked: k.revoked,
    created_at: unix(k.createTime),
    last_used_at: unix(k.lastUsedTime),
  };
}

const createBody = z
  .object({
    name: z.string().trim().min(1).max(100),
    scopes: z.array(z.enum(SCOPE_NAMES)).min(1).max(SCOPE_NAMES.length).optional(),
    endpoint: z.string().min(1).max(40).nullable().optional(),
    // Unix seconds, at most the last second of year 9999 (what dates and both stores represent).
    expires_at: z.number().int().positive().max(MAX_EXPIRES_AT_SECONDS, 'must be a unix time in seconds before year 10000').nullable().optional(),
  })
  .strict();

const rotateBody = z
  .object({ grace_seconds: z.number().int().min(1).max(30 * 86_400).optional() })
  .strict();

export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const result = schema.safeParse(body ?? {});
  if (!result.success) {
    const issue = result.error.issues[0];
    const param = issue?.path.length ? issue.path.join('.') : issue?.code === 'unrecognized_keys' ? issue.keys.join(',') : null;
    throw invalidRequest(`Invalid request body${param ? ` (${param})` : ''}: ${issue?.message ?? 'invalid'}.`, {
      param: param ?? undefined,
    });
  }
  return result.data;
}

function queryLimit(value: unknown): number {
  if (value === undefined) return 20;
  const n = typeof value === 'string' && /^\d{1,3}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= 100)) throw invalidRequest('limit must be an integer between 1 and 100.', { param: 'limit' });
  return n;
}

export function managementRouter(deps: ManagementDeps): express.Router {
  const router = express.Router({ mergeParams: true });
  const requestId = (res: Response): string => String(res.locals['requestId'] ?? 'none');

  /**
   * Authenticates the caller for management of the URL's project. Every call below acts as this
   * key (the actor): the auth service lets it create, see, rotate and revoke only keys within its
   * own scopes and endpoint binding.
   */
  async function actorOf(req: Request, res: Response): Promise<{ project: string; actorKeyId: string }> {
    const principal = await deps.auth.authenticate(
      { apiKey: bearerKey(req), project: String(req.params['project'] ?? ''), endpoint: '', scope: Scope.SCOPE_MANAGEMENT },
      requestId(res),
    );
    const project = principal.project?.id;
    if (!project) throw new AppError('internal', 'auth returned no project');
    // Key material in responses must never be cached by intermediaries.
    res.set('cache-control', 'no-store');
    return { project, actorKeyId: principal.keyId };
  }

  const keyId = (req: Request): string => String(req.params['id'] ?? '');
  const requireKey = (k: ApiKey | undefined): ApiKey => {
    if (!k) throw new AppError('internal', 'auth returned no key');
    return k;
  };

  router.get('/api-keys', async (req, res) => {
    const actor = await actorOf(req, res);
    const limit = queryLimit(req.query['limit']);
    const after = req.query['after'];
    if (after !== undefined && typeof after !== 'string') throw invalidRequest('after must be a key id.', { param: 'after' });
    const page = await deps.auth.admin(requestId(res), (c, o) => c.listApiKeys({ ...actor, pageSize: limit, after: after ?? '' }, o));
    const data = page.apiKeys.map(apiKeyObject);
    res.json({
      object: 'list',
      data,
      first_id: data[0]?.id ?? null,
      last_id: data.at(-1)?.id ?? null,
      has_more: page.hasMore,
    });
  });

  router.post('/api-keys', async (req, res) => {
    const actor = await actorOf(req, res);
    const body = parseBody(createBody, req.body);
    const created = await deps.auth.admin(requestId(res), (c, o) =>
      c.createApiKey(
        {
          ...actor,
          name: body.name,
          scopes: (body.scopes ?? ['inference']).map(scopeValue),
          // Omitted or null: unbound for an unbound caller; a bound caller's key is bound to its endpoint.
          endpointSlug: body.endpoint ?? '',
          expireTime: body.expires_at == null ? undefined : expireTimeFromUnixSeconds(body.expires_at),
        },
        o,
      ),
    );
    res.status(201).json({ ...apiKeyObject(requireKey(created.apiKey)), key: created.secret });
  });

  router.get('/api-keys/:id', async (req, res) => {
    const actor = await actorOf(req, res);
    const got = await deps.auth.admin(requestId(res), (c, o) => c.getApiKey({ ...actor, keyId: keyId(req) }, o));
    res.json(apiKeyObject(requireKey(got.apiKey)));
  });

  router.delete('/api-keys/:id', async (req, res) => {
    const actor = await actorOf(req, res);
    const revoked = await deps.auth.admin(requestId(res), (c, o) => c.revokeApiKey({ ...actor, keyId: keyId(req) }, o));
    res.json(apiKeyObject(requireKey(revoked.apiKey)));
  });

  router.post('/api-keys/:id/rotate', async (req, res) => {
    const actor = await actorOf(req, res);
    const body = parseBody(rotateBody, req.body);
    const rotated = await deps.auth.admin(requestId(res), (c, o) =>
      c.rotateApiKey({ ...actor, keyId: keyId(req), graceSeconds: body.grace_seconds ?? 0 }, o),
    );
    const previous = requireKey(rotated.previousApiKey);
    res.status(201).json({
      ...apiKeyObject(requireKey(rotated.apiKey)),
      key: rotated.secret,
      previous_key: { ...apiKeyObject(previous), grace_expires_at: unix(previous.graceExpireTime) },
    });
  });

  return router;
}
