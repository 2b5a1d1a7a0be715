/** The project and endpoint admin RPCs (operator calls: the gateway never exposes them). */
import { ENDPOINT_KIND_NAMES, endpointKindName } from '../../../lib/auth/endpoint-kinds.js';
import { EndpointKind } from '../../../gen/xerotier/auth/v1/auth_service.js';
import { invalidRequest, notFound } from '../../../lib/errors/app-error.js';
import type { AuthService, AuthServiceOptions } from './auth-service.js';
import { toEndpointMessage, toProjectMessage } from './messages.js';
import { UniqueViolationError, type AuthStore, type EndpointRow, type ProjectRow } from './stores/store.js';
import { newId, quoted, validName, validSlug } from './validation.js';

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$/;
const POOL_NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;
export const DEFAULT_CONTEXT_WINDOW = 4096;
const MAX_CONTEXT_WINDOW = 10_000_000;

export type ProjectAdmin = Pick<
  AuthService,
  'createProject' | 'listProjects' | 'createEndpoint' | 'listEndpoints' | 'setEndpointActive' | 'setEndpointModel'
>;

/** The project addressed by id or slug, or NOT_FOUND `project_not_found`. */
export async function findProjectOrThrow(store: AuthStore, ref: string): Promise<ProjectRow> {
  const project = ref === '' ? undefined : await store.findProject(ref);
  if (!project) throw notFound(`Project ${quoted(ref)} not found.`, { code: 'project_not_found', param: 'project' });
  return project;
}

export function createProjectAdmin(options: AuthServiceOptions): ProjectAdmin {
  const { store, tiers, logger: rootLogger } = options;
  const now = options.now ?? Date.now;

  return {
    async createProject(request, context) {
      const slug = validSlug(request.slug, 'slug');
      const project: ProjectRow = { id: newId('proj'), slug, name: validName(request.name, 'name', slug), createdAt: now() };
      try {
        await store.insertProject(project);
      } catch (err) {
        if (err instanceof UniqueViolationError) {
          throw invalidRequest(`Project '${slug}' already exists.`, { code: 'project_exists', param: 'slug' });
        }
        throw err;
      }
      (context?.logger ?? rootLogger).info({ projectId: project.id, slug }, 'project created');
      return { project: toProjectMessage(project) };
    },

    async listProjects() {
      return { projects: (await store.listProjects()).map(toProjectMessage) };
    },

    async createEndpoint(request, context) {
      const project = await findProjectOrThrow(store, request.project);
      const slug = validSlug(request.slug, 'slug');
      const tier = tiers.get(request.tier);
      if (!tier) {
        throw invalidRequest(`Unknown tier; expected one of: ${[...tiers.keys()].join(', ')}.`, { param: 'tier' });
      }
      if (!MODEL_NAME.test(request.model)) {
        throw invalidRequest('model must be 1-200 characters of letters, digits and ._:/@+-', { param: 'model' });
      }
      const pool = request.hardwarePool === '' ? tier.pools[0] : request.hardwarePool;
      if (pool === undefined || !POOL_NAME.test(pool) || !tier.pools.includes(pool)) {
        throw invalidRequest(`hardware_pool must be one of the tier's pools: ${tier.pools.join(', ')}.`, {
          param: 'hardware_pool',
        });
      }
      const contextWindow = request.contextWindow === 0 ? DEFAULT_CONTEXT_WINDOW : request.contextWindow;
      if (!Number.isInteger(contextWindow) || contextWindow < 1 || contextWindow > MAX_CONTEXT_WINDOW) {
        throw invalidRequest(`context_window must be between 1 and ${MAX_CONTEXT_WINDOW}.`, { param: 'context_window' });
      }
      const kind = endpointKindName(request.kind ?? EndpointKind.ENDPOINT_KIND_CHAT);
      if (kind === undefined) {
        throw invalidRequest(`kind must be one of: ${ENDPOINT_KIND_NAMES.join(', ')}.`, { param: 'kind' });
      }
      const endpoint: EndpointRow = {
        id: newId('ep'),
        projectId: project.id,
        slug,
        tier: tier.slug,
        model: request.model,
        hardwarePool: pool,
        contextWindow,
        active: true,
        kind,
        createdAt: now(),
      };
      try {
        await store.insertEndpoint(endpoint);
      } catch (err) {
        if (err instanceof UniqueViolationError) {
          throw invalidRequest(`Endpoint '${slug}' already exists in project '${project.slug}'.`, {
            code: 'endpoint_exists',
            param: 'slug',
          });
        }
        throw err;
      }
      (context?.logger ?? rootLogger).info({ projectId: project.id, endpoint: slug, tier: tier.slug, kind }, 'endpoint created');
      return { endpoint: toEndpointMessage(endpoint) };
    },

    async listEndpoints(request) {
      const project = await findProjectOrThrow(store, request.project);
      return { endpoints: (await store.listEndpoints(project.id)).map(toEndpointMessage) };
    },

    async setEndpointActive(request, context) {
      const project = await findProjectOrThrow(store, request.project);
      const endpoint = await store.setEndpointActive(project.id, request.endpoint, request.active);
      if (!endpoint) throw notFound(`Endpoint ${quoted(request.endpoint)} not found.`, { code: 'endpoint_not_found' });
      (context?.logger ?? rootLogger).info({ projectId: project.id, endpoint: endpoint.slug, active: endpoint.active }, 'endpoint updated');
      return { endpoint: toEndpointMessage(endpoint) };
    },

    async setEndpointModel(request, context) {
      if (!MODEL_NAME.test(request.model)) {
        throw invalidRequest('model must be 1-200 characters of letters, digits and ._:/@+-', { param: 'model' });
      }
      const project = await findProjectOrThrow(store, request.project);
      const endpoint = await store.setEndpointModel(project.id, request.endpoint, request.model);
      if (!endpoint) throw notFound(`Endpoint ${quoted(request.endpoint)} not found.`, { code: 'endpoint_not_found' });
      (context?.logger ?? rootLogger).info({ projectId: project.id, endpoint: endpoint.slug, model: endpoint.model }, 'endpoint model set');
      return { endpoint: toEndpointMessage(endpoint) };
    },
  };
}
