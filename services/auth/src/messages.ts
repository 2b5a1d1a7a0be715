/** Store rows → proto messages (the only place that knows both shapes). */
import type { ApiKey, Endpoint, Project } from '../../../gen/xerotier/auth/v1/auth_service.js';
import { endpointKindValue } from '../../../lib/auth/endpoint-kinds.js';
import { scopeValue } from '../../../lib/auth/scopes.js';
import type { ApiKeyRow, EndpointRow, ProjectRow } from './stores/store.js';

const optionalDate = (ms: number | null): Date | undefined => (ms === null ? undefined : new Date(ms));

export function toProjectMessage(p: ProjectRow): Project {
  return { id: p.id, slug: p.slug, name: p.name, createTime: new Date(p.createdAt) };
}

export function toEndpointMessage(e: EndpointRow): Endpoint {
  return {
    id: e.id,
    projectId: e.projectId,
    slug: e.slug,
    tier: e.tier,
    model: e.model,
    hardwarePool: e.hardwarePool,
    contextWindow: e.contextWindow,
    active: e.active,
    createTime: new Date(e.createdAt),
    kind: endpointKindValue(e.kind),
  };
}

export function toApiKeyMessage(k: ApiKeyRow): ApiKey {
  return {
    id: k.id,
    projectId: k.projectId,
    name: k.name,
    prefix: k.prefix,
    scopes: k.scopes.map(scopeValue),
    endpointSlug: k.endpointSlug ?? '',
    expireTime: optionalDate(k.expiresAt),
    revoked: k.revokedAt !== null,
    rotatedFromKeyId: k.rotatedFromKeyId ?? '',
    graceExpireTime: optionalDate(k.graceExpiresAt),
    createTime: new Date(k.createdAt),
    lastUsedTime: optionalDate(k.lastUsedAt),
  };
}
