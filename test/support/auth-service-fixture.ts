/**
 * A real AuthService on a test store with an injected clock, plus a project fixture with keys of
 * every shape, for the auth service's unit tests.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { Scope, type AuthenticateRequest } from '../../gen/xerotier/auth/v1/auth_service.js';
import { isAppError, type ErrorKind } from '../../lib/errors/app-error.js';
import { loadTierTable } from '../../lib/tiers/tier-table.js';
import { createAuthService, type AuthService } from '../../services/auth/src/auth-service.js';
import type { AuthStore } from '../../services/auth/src/stores/store.js';
import { silentLogger } from './auth-stores.js';

export const PEPPER = 'test-pepper-0123456789abcdef';
const tiers = loadTierTable();
export const { SCOPE_INFERENCE: INFERENCE, SCOPE_MANAGEMENT: MANAGEMENT } = Scope;

export class Clock {
  constructor(public t = Date.UTC(2030, 0, 1)) {}
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

export function makeService(store: AuthStore, opts: { clock?: Clock; logger?: Logger; pepper?: string } = {}): AuthService {
  return createAuthService({
    store,
    pepper: opts.pepper ?? PEPPER,
    tiers,
    rotationGraceSeconds: 86_400,
    logger: opts.logger ?? silentLogger(),
    now: (opts.clock ?? new Clock()).now,
  });
}

export async function rejectsWith(promise: Promise<unknown>, kind: ErrorKind, code: string): Promise<Error> {
  let caught: Error | undefined;
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isAppError(err), `expected an AppError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    assert.equal(err.code, code, err.message);
    caught = err;
    return true;
  });
  assert.ok(caught);
  return caught;
}

export const uniqueSlug = (base: string): string => `${base}-${randomBytes(4).toString('hex')}`;

export interface Fixture {
  slug: string;
  id: string;
  keys: { full: string; inference: string; management: string; bound: string };
  keyIds: { full: string };
}

/** A project with endpoints chat, other, off (inactive) and keys of every shape. */
export async function fixture(service: AuthService, base = 'acme'): Promise<Fixture> {
  const slug = uniqueSlug(base);
  const { project } = await service.createProject({ slug, name: `Project ${base}` });
  assert.ok(project);
  for (const ep of ['chat', 'other', 'off']) {
    await service.createEndpoint({ project: slug, slug: ep, tier: 'cpu_standard', model: 'smollm2-135m-instruct', hardwarePool: '', contextWindow: 2048 });
  }
  await service.setEndpointActive({ project: slug, endpoint: 'off', active: false });
  const key = async (scopes: Scope[], endpointSlug = '') =>
    service.createApiKey({ project: slug, name: 'k', scopes, endpointSlug, expireTime: undefined });
  const full = await key([INFERENCE, MANAGEMENT]);
  return {
    slug,
    id: project.id,
    keys: {
      full: full.secret,
      inference: (await key([INFERENCE])).secret,
      management: (await key([MANAGEMENT])).secret,
      bound: (await key([INFERENCE], 'chat')).secret,
    },
    keyIds: { full: full.apiKey?.id ?? '' },
  };
}

export const req = (apiKey: string, project: string, endpoint = 'chat', requiredScope = INFERENCE): AuthenticateRequest => ({
  apiKey,
  project,
  endpoint,
  requiredScope,
});
