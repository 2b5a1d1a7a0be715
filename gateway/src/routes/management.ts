/**
 * Project management API: `/{project}/v1/management/api-keys[...]` (issue 3; owned by auth).
 * Mounted by app.ts with `mergeParams`; body parsing and error rendering are the app's. Every
 * route authenticates the bearer key with the management scope for the URL's project, and then
 * acts on the key's own project only. Responses are snake_case, times in unix seconds.
 */
import { bearerKey } from '../bearer.js';
import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import { Scope, type ApiKey, type AuthServiceDefinition } from '../../../gen/xerotier/auth/v1/auth_service.js';
import { AppError, invalidRequest } from '../../../lib/errors/app-error.js';
import { callOptions, type AppClient } from '../../../lib/grpc/client.js';

export interface ManagementDeps {
  auth: AppClient<typeof AuthServiceDefinition>;
  /** Deadline of each auth call (default 5 s). */
  timeoutMs?: number | undefined;
}

type ScopeName = 'inference' | 'management';
const scopeToName: Partial<Record<Scope, ScopeName>> = {
  [Scope.SCOPE_INFERENCE]: 'inference',
  [Scope.SCOPE_MANAGEMENT]: 'management',
};
const nameToScope: Record<ScopeName, Scope> = {
  inference: Scope.SCOPE_INFERENCE,
  management: Scope.SCOPE_MANAGEMENT,
};

const unix = (d: Date | undefined): number | null => (d === undefined ? null : Math.floor(d.getTime() / 1000));

/** The public shape of a key (never its secret). */
export function apiKeyObject(k: ApiKey) {
  return {
    id: k.id,
    object: 'api_key' as const,
    name: k.name,
    prefix: k.prefix,
    scopes: k.scopes.map((s) => scopeToName[s]).filter((s): s is ScopeName => s !== undefined),
    endpoint: k.endpointSlug === '' ? null : k.endpointSlug,
    expires_at: unix(k.expireTime),
    revoked: k.revoked,
    created_at: unix(k.createTime),
    last_used_at: unix(k.lastUsedTime),
  };
}

const MAX_UNIX_SECONDS = 253_402_300_799;

const createBody = z
  .object({
    name: z.string().trim().min(1).max(100),
    scopes: z.array(z.enum(['inference', 'management'])).min(1).max(2).optional(),
    endpoint: z.string().min(1).max(40).nullable().optional(),
    // Unix seconds, at most the last second of year 9999 (what dates and both stores represent).
    expires_at: z.number().int().positive().max(MAX_UNIX_SECONDS, 'must be a unix time in seconds before year 10000').nullable().optional(),
  })
  .strict();

const rotateBody = z
  .object({ grace_seconds: z.number().int().min(1).max(30 * 86_400).optional() })
  .strict();

function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
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
  const timeoutMs = deps.timeoutMs ?? 5_000;
  const opts = (res: Response) =>
    // A Date: nice-grpc's deadline middleware reads a bare number as a relative offset.
    callOptions(String(res.locals['requestId'] ?? 'none'), undefined, new Date(Date.now() + timeoutMs));

  /** Authenticates the caller for management of the URL's project; returns its project id. */
  async function projectOf(req: Request, res: Response): Promise<string> {
    const { principal } = await deps.auth.authenticate(
      {
        apiKey: bearerKey(req),
        project: String(req.params['project'] ?? ''),
        endpoint: '',
        requiredScope: Scope.SCOPE_MANAGEMENT,
      },
      opts(res),
    );
    const id = principal?.project?.id;
    if (!id) throw new AppError('internal', 'auth returned no project');
    // Key material in responses must never be cached by intermediaries.
    res.set('cache-control', 'no-store');
    return id;
  }

  const keyId = (req: Request): string => String(req.params['id'] ?? '');
  const requireKey = (k: ApiKey | undefined): ApiKey => {
    if (!k) throw new AppError('internal', 'auth returned no key');
    return k;
  };

  router.get('/api-keys', async (req, res) => {
    const project = await projectOf(req, res);
    const limit = queryLimit(req.query['limit']);
    const after = req.query['after'];
    if (after !== undefined && typeof after !== 'string') throw invalidRequest('after must be a key id.', { param: 'after' });
    const page = await deps.auth.listApiKeys({ project, pageSize: limit, after: after ?? '' }, opts(res));
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
    const project = await projectOf(req, res);
    const body = parseBody(createBody, req.body);
    // Checked here too: gRPC errors don't carry `param` back to us.
    if (body.expires_at != null && body.expires_at * 1000 <= Date.now()) {
      throw invalidRequest('expires_at must be in the future.', { param: 'expires_at' });
    }
    const created = await deps.auth.createApiKey(
      {
        project,
        name: body.name,
        scopes: (body.scopes ?? ['inference']).map((s) => nameToScope[s]),
        endpointSlug: body.endpoint ?? '',
        expireTime: body.expires_at == null ? undefined : new Date(body.expires_at * 1000),
      },
      opts(res),
    );
    res.status(201).json({ ...apiKeyObject(requireKey(created.apiKey)), key: created.secret });
  });

  router.get('/api-keys/:id', async (req, res) => {
    const project = await projectOf(req, res);
    const got = await deps.auth.getApiKey({ project, keyId: keyId(req) }, opts(res));
    res.json(apiKeyObject(requireKey(got.apiKey)));
  });

  router.delete('/api-keys/:id', async (req, res) => {
    const project = await projectOf(req, res);
    const revoked = await deps.auth.revokeApiKey({ project, keyId: keyId(req) }, opts(res));
    res.json(apiKeyObject(requireKey(revoked.apiKey)));
  });

  router.post('/api-keys/:id/rotate', async (req, res) => {
    const project = await projectOf(req, res);
    const body = parseBody(rotateBody, req.body);
    const rotated = await deps.auth.rotateApiKey(
      { project, keyId: keyId(req), graceSeconds: body.grace_seconds ?? 0 },
      opts(res),
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
