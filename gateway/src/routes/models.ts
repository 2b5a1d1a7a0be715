/** GET /{project}/{endpoint}/v1/models — the OpenAI list with the endpoint's model. */
import type { Request, Response } from 'express';
import { Scope } from '../../../gen/xerotier/auth/v1/auth_service.js';
import { AppError } from '../../../lib/errors/app-error.js';
import { rateLimitHeaders } from '../openai/rate-limit-headers.js';
import type { RequestLocals } from '../request-context.js';
import type { AuthPort, QuotaPort } from '../upstreams.js';
import { bearerKey } from '../bearer.js';

export function modelsHandler(deps: { auth: AuthPort; quota: QuotaPort }) {
  return async (req: Request, res: Response): Promise<void> => {
    const locals = res.locals as RequestLocals;
    const principal = await deps.auth.authenticate(
      { apiKey: bearerKey(req), project: String(req.params['project']), endpoint: String(req.params['endpoint']), scope: Scope.SCOPE_INFERENCE },
      locals.requestId,
    );
    const endpoint = principal.endpoint;
    if (!endpoint) throw new AppError('internal', 'auth returned no endpoint');
    const limits = await deps.quota.limits({ requestId: locals.requestId, keyId: principal.keyId, tier: endpoint.tier });
    locals.headers = rateLimitHeaders(limits?.requests, limits?.tokens);
    res.set(locals.headers);
    const created = Math.floor((endpoint.createTime?.getTime() ?? Date.now()) / 1000);
    res.json({
      object: 'list',
      data: [{ id: endpoint.model, object: 'model', created, owned_by: principal.project?.slug ?? 'xerotier' }],
    });
  };
}
