/** Projects and endpoints on Kysely (both dialects): rows in, rows out, no policy. */
import type { Kysely, Selectable } from 'kysely';
import { isEndpointKindName } from '../../../../lib/auth/endpoint-kinds.js';
import { guardUnique, type AuthDatabase, type EndpointsTable, type ProjectsTable } from './database.js';
import type { AuthStore, EndpointRow, ProjectRow } from './store.js';

export type ProjectQueries = Pick<
  AuthStore,
  'findProject' | 'listProjects' | 'insertProject' | 'findEndpoint' | 'listEndpoints' | 'insertEndpoint' | 'setEndpointActive' | 'setEndpointModel'
>;

export const toProject = (r: Selectable<ProjectsTable>): ProjectRow => ({
  id: r.id,
  slug: r.slug,
  name: r.name,
  createdAt: Number(r.created_at),
});

export const toEndpoint = (r: Selectable<EndpointsTable>): EndpointRow => ({
  id: r.id,
  projectId: r.project_id,
  slug: r.slug,
  tier: r.tier,
  model: r.model,
  hardwarePool: r.hardware_pool,
  contextWindow: Number(r.context_window),
  active: Number(r.active) === 1,
  // Rows are written with known kinds only; anything else reads as the default, chat.
  kind: isEndpointKindName(r.kind) ? r.kind : 'chat',
  createdAt: Number(r.created_at),
});

export function projectQueries(db: Kysely<AuthDatabase>): ProjectQueries {
  const findEndpoint = async (projectId: string, slug: string): Promise<EndpointRow | undefined> => {
    const row = await db
      .selectFrom('endpoints')
      .selectAll()
      .where('project_id', '=', projectId)
      .where('slug', '=', slug)
      .executeTakeFirst();
    return row ? toEndpoint(row) : undefined;
  };

  return {
    async findProject(idOrSlug) {
      const row = await db
        .selectFrom('projects')
        .selectAll()
        .where((eb) => eb.or([eb('id', '=', idOrSlug), eb('slug', '=', idOrSlug)]))
        .executeTakeFirst();
      return row ? toProject(row) : undefined;
    },

    async listProjects() {
      const rows = await db.selectFrom('projects').selectAll().orderBy('created_at').orderBy('id').execute();
      return rows.map(toProject);
    },

    async insertProject(p) {
      await guardUnique(() =>
        db.insertInto('projects').values({ id: p.id, slug: p.slug, name: p.name, created_at: p.createdAt }).execute(),
      );
    },

    findEndpoint,

    async listEndpoints(projectId) {
      const rows = await db
        .selectFrom('endpoints')
        .selectAll()
        .where('project_id', '=', projectId)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map(toEndpoint);
    },

    async insertEndpoint(e) {
      await guardUnique(() =>
        db
          .insertInto('endpoints')
          .values({
            id: e.id,
            project_id: e.projectId,
            slug: e.slug,
            tier: e.tier,
            model: e.model,
            hardware_pool: e.hardwarePool,
            context_window: e.contextWindow,
            active: e.active ? 1 : 0,
            kind: e.kind,
            created_at: e.createdAt,
          })
          .execute(),
      );
    },

    async setEndpointActive(projectId, slug, active) {
      await db
        .updateTable('endpoints')
        .set({ active: active ? 1 : 0 })
        .where('project_id', '=', projectId)
        .where('slug', '=', slug)
        .execute();
      return findEndpoint(projectId, slug);
    },

    async setEndpointModel(projectId, slug, model) {
      await db.updateTable('endpoints').set({ model }).where('project_id', '=', projectId).where('slug', '=', slug).execute();
      return findEndpoint(projectId, slug);
    },
  };
}
