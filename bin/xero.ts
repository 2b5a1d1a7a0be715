/**
 * xero: operator CLI for the auth service (projects, endpoints, API keys) over gRPC.
 *
 *   xero projects create <slug> [--name <name>]
 *   xero projects list
 *   xero endpoints create <project> <slug> --tier <tier> --model <model> [--pool <pool>] [--context-window <n>] [--kind chat|embeddings]
 *   xero endpoints list <project>
 *   xero endpoints activate|deactivate <project> <slug>
 *   xero keys create <project> [--name <name>] [--scopes inference,management] [--endpoint <slug>] [--expires-in <seconds>]
 *   xero keys list <project>
 *   xero keys revoke <project> <id>
 *   xero keys rotate <project> <id> [--grace <seconds>]
 *   xero join-keys create|list|revoke …, xero workers list|revoke … (commands/workers.ts)
 *
 * Global: --auth <host:port> (env XERO_AUTH_ADDRESS, default 127.0.0.1:50051),
 * --service-token <token> (env SERVICE_TOKEN), --json. Errors print one line and exit 1.
 */
import { randomBytes } from 'node:crypto';
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  AuthServiceDefinition,
  Scope,
  type ApiKey,
  type Endpoint,
  type Project,
} from '../gen/xerotier/auth/v1/auth_service.js';
import { ENDPOINT_KIND_NAMES, endpointKindName, endpointKindValue, type EndpointKindName } from '../lib/auth/endpoint-kinds.js';
import { MAX_EXPIRES_AT_MS } from '../lib/auth/expiry.js';
import { SCOPE_NAMES, isScopeName, scopeName, scopeValue } from '../lib/auth/scopes.js';
import { isAppError } from '../lib/errors/app-error.js';
import { callOptions, createAppClient, createGrpcChannel, type AppClient } from '../lib/grpc/client.js';

interface GlobalOptions {
  auth: string;
  serviceToken?: string | undefined;
  json?: boolean | undefined;
}

type AuthClient = AppClient<typeof AuthServiceDefinition>;

const iso = (d: Date | undefined): string | null => (d === undefined ? null : d.toISOString());
const unix = (d: Date | undefined): number | null => (d === undefined ? null : Math.floor(d.getTime() / 1000));
const scopeLabel = (s: Scope): string => scopeName(s) ?? 'unknown';

const projectJson = (p: Project) => ({ id: p.id, slug: p.slug, name: p.name, created_at: unix(p.createTime) });
const endpointJson = (e: Endpoint) => ({
  id: e.id,
  project_id: e.projectId,
  slug: e.slug,
  tier: e.tier,
  model: e.model,
  hardware_pool: e.hardwarePool,
  context_window: e.contextWindow,
  active: e.active,
  kind: endpointKindName(e.kind) ?? 'unknown',
  created_at: unix(e.createTime),
});
const keyJson = (k: ApiKey) => ({
  id: k.id,
  project_id: k.projectId,
  name: k.name,
  prefix: k.prefix,
  scopes: k.scopes.map(scopeLabel),
  endpoint: k.endpointSlug === '' ? null : k.endpointSlug,
  expires_at: unix(k.expireTime),
  revoked: k.revoked,
  rotated_from: k.rotatedFromKeyId === '' ? null : k.rotatedFromKeyId,
  grace_expires_at: unix(k.graceExpireTime),
  created_at: unix(k.createTime),
  last_used_at: unix(k.lastUsedTime),
});

function keyStatus(k: ApiKey): string {
  if (k.revoked) return 'revoked';
  const now = Date.now();
  if (k.expireTime && k.expireTime.getTime() <= now) return 'expired';
  if (k.graceExpireTime) return k.graceExpireTime.getTime() <= now ? 'rotated' : `grace until ${iso(k.graceExpireTime)}`;
  return 'active';
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

const positiveInt = (what: string) => (value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError(`${what} must be a positive integer.`);
  }
  return Number(value);
};

/** `--expires-in`: a positive number of seconds that ends no later than the latest expiry a key can have. */
function parseExpiresIn(value: string): number {
  const seconds = positiveInt('--expires-in')(value);
  if (Date.now() + seconds * 1000 > MAX_EXPIRES_AT_MS) {
    throw new InvalidArgumentError('--expires-in must end no later than 9999-12-31T23:59:59Z.');
  }
  return seconds;
}

function parseScopes(value: string): Scope[] {
  return value.split(',').map((s) => {
    const name = s.trim();
    if (isScopeName(name)) return scopeValue(name);
    throw new InvalidArgumentError(`unknown scope "${name}" (expected ${SCOPE_NAMES.join(', ')}).`);
  });
}

const program = new Command('xero')
  .description('Operate the auth service: projects, endpoints and API keys.')
  .addOption(new Option('--auth <host:port>', 'auth service address').env('XERO_AUTH_ADDRESS').default('127.0.0.1:50051'))
  .addOption(new Option('--service-token <token>', 'service credential of the auth service').env('SERVICE_TOKEN'))
  .option('--json', 'print JSON')
  .exitOverride();

/** Runs an action with a connected client; any failure becomes one line and exit code 1. */
function action<A extends unknown[]>(run: (client: AuthClient, global: GlobalOptions, ...args: A) => Promise<unknown>) {
  return async (...args: unknown[]): Promise<void> => {
    const command = args.at(-1) as Command;
    const global = command.optsWithGlobals<GlobalOptions>();
    const channel = createGrpcChannel(global.auth);
    const client = createAppClient(AuthServiceDefinition, channel, {
      address: global.auth,
      target: `auth service at ${global.auth}`,
      serviceToken: global.serviceToken,
    });
    try {
      const result = await run(client, global, ...(args.slice(0, -1) as A));
      if (global.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } finally {
      channel.close();
    }
  };
}

const opts = () => callOptions(`xero_cli_${randomBytes(6).toString('hex')}`, undefined, new Date(Date.now() + 10_000));
const print = (global: GlobalOptions, text: string): void => {
  if (!global.json) process.stdout.write(`${text}\n`);
};

const projects = program.command('projects').description('Manage projects');
projects
  .command('create <slug>')
  .description('Create a project')
  .option('--name <name>', 'display name (default: the slug)')
  .action(
    action(async (client, global, slug: string, o: { name?: string }) => {
      const { project } = await client.createProject({ slug, name: o.name ?? '' }, opts());
      if (!project) throw new Error('no project returned');
      print(global, `created project ${project.slug} (${project.id})`);
      return projectJson(project);
    }),
  );
projects
  .command('list')
  .description('List projects')
  .action(
    action(async (client, global) => {
      const { projects: list } = await client.listProjects({}, opts());
      print(global, table([['ID', 'SLUG', 'NAME', 'CREATED'], ...list.map((p) => [p.id, p.slug, p.name, iso(p.createTime) ?? ''])]));
      return list.map(projectJson);
    }),
  );

const endpoints = program.command('endpoints').description('Manage endpoints');
endpoints
  .command('create <project> <slug>')
  .description('Create an endpoint')
  .requiredOption('--tier <tier>', 'service tier (e.g. cpu_standard)')
  .requiredOption('--model <model>', 'model served by the endpoint')
  .option('--pool <pool>', "hardware pool (default: the tier's first pool)")
  .option('--context-window <tokens>', 'context window in tokens', positiveInt('--context-window'))
  .addOption(new Option('--kind <kind>', 'what the endpoint serves').choices(ENDPOINT_KIND_NAMES).default('chat'))
  .action(
    action(
      async (
        client,
        global,
        project: string,
        slug: string,
        o: { tier: string; model: string; pool?: string; contextWindow?: number; kind: EndpointKindName },
      ) => {
        const { endpoint } = await client.createEndpoint(
          {
            project,
            slug,
            tier: o.tier,
            model: o.model,
            hardwarePool: o.pool ?? '',
            contextWindow: o.contextWindow ?? 0,
            kind: endpointKindValue(o.kind),
          },
          opts(),
        );
        if (!endpoint) throw new Error('no endpoint returned');
        print(
          global,
          `created endpoint ${endpoint.slug} (${endpoint.id}): ${endpointKindName(endpoint.kind) ?? 'unknown'}, tier ${endpoint.tier}, ` +
            `pool ${endpoint.hardwarePool}, model ${endpoint.model}, context ${endpoint.contextWindow}`,
        );
        return endpointJson(endpoint);
      },
    ),
  );
endpoints
  .command('list <project>')
  .description('List the endpoints of a project')
  .action(
    action(async (client, global, project: string) => {
      const { endpoints: list } = await client.listEndpoints({ project }, opts());
      print(
        global,
        table([
          ['ID', 'SLUG', 'KIND', 'TIER', 'POOL', 'MODEL', 'CONTEXT', 'ACTIVE'],
          ...list.map((e) => [
            e.id,
            e.slug,
            endpointKindName(e.kind) ?? 'unknown',
            e.tier,
            e.hardwarePool,
            e.model,
            String(e.contextWindow),
            e.active ? 'yes' : 'no',
          ]),
        ]),
      );
      return list.map(endpointJson);
    }),
  );
for (const [name, active] of [['activate', true], ['deactivate', false]] as const) {
  endpoints
    .command(`${name} <project> <slug>`)
    .description(`${active ? 'Resume' : 'Stop'} serving an endpoint`)
    .action(
      action(async (client, global, project: string, slug: string) => {
        const { endpoint } = await client.setEndpointActive({ project, endpoint: slug, active }, opts());
        if (!endpoint) throw new Error('no endpoint returned');
        print(global, `endpoint ${endpoint.slug} is ${endpoint.active ? 'active' : 'inactive'}`);
        return endpointJson(endpoint);
      }),
    );
}

endpoints
  .command('set-model <project> <slug> <model>')
  .description('Set the model an endpoint serves (a platform model id workers advertise)')
  .action(
    action(async (client, global, project: string, slug: string, model: string) => {
      const { endpoint } = await client.setEndpointModel({ project, endpoint: slug, model }, opts());
      if (!endpoint) throw new Error('no endpoint returned');
      print(global, `endpoint ${endpoint.slug} serves ${endpoint.model}`);
      return endpointJson(endpoint);
    }),
  );

const keys = program.command('keys').description('Manage API keys');
keys
  .command('create <project>')
  .description('Create an API key (the full key is shown once)')
  .option('--name <name>', 'display name', 'default')
  .option('--scopes <list>', 'comma-separated: inference,management', parseScopes)
  .option('--endpoint <slug>', 'bind the key to one endpoint')
  .option('--expires-in <seconds>', 'expire the key after this many seconds', parseExpiresIn)
  .action(
    action(
      async (
        client,
        global,
        project: string,
        o: { name: string; scopes?: Scope[]; endpoint?: string; expiresIn?: number },
      ) => {
        const { apiKey, secret } = await client.createApiKey(
          {
            project,
            name: o.name,
            scopes: o.scopes ?? [],
            endpointSlug: o.endpoint ?? '',
            expireTime: o.expiresIn === undefined ? undefined : new Date(Date.now() + o.expiresIn * 1000),
          },
          opts(),
        );
        if (!apiKey) throw new Error('no key returned');
        print(
          global,
          `created key ${apiKey.id} (${apiKey.scopes.map(scopeLabel).join(',')}` +
            `${apiKey.endpointSlug ? `, endpoint ${apiKey.endpointSlug}` : ''}` +
            `${apiKey.expireTime ? `, expires ${iso(apiKey.expireTime)}` : ''}); store it now, it is not shown again:\n${secret}`,
        );
        return { ...keyJson(apiKey), key: secret };
      },
    ),
  );
keys
  .command('list <project>')
  .description('List the API keys of a project')
  .action(
    action(async (client, global, project: string) => {
      const all: ApiKey[] = [];
      let after = '';
      for (;;) {
        const page = await client.listApiKeys({ project, pageSize: 100, after }, opts());
        all.push(...page.apiKeys);
        const last = page.apiKeys.at(-1);
        if (!page.hasMore || !last) break;
        after = last.id;
      }
      print(
        global,
        table([
          ['ID', 'PREFIX', 'NAME', 'SCOPES', 'ENDPOINT', 'STATUS', 'CREATED', 'LAST USED'],
          ...all.map((k) => [
            k.id,
            `${k.prefix}…`,
            k.name,
            k.scopes.map(scopeLabel).join(','),
            k.endpointSlug || '*',
            keyStatus(k),
            iso(k.createTime) ?? '',
            iso(k.lastUsedTime) ?? 'never',
          ]),
        ]),
      );
      return all.map(keyJson);
    }),
  );
keys
  .command('revoke <project> <id>')
  .description('Revoke an API key')
  .action(
    action(async (client, global, project: string, keyId: string) => {
      const { apiKey } = await client.revokeApiKey({ project, keyId }, opts());
      if (!apiKey) throw new Error('no key returned');
      print(global, `revoked ${apiKey.id} (${apiKey.prefix}…)`);
      return keyJson(apiKey);
    }),
  );
keys
  .command('rotate <project> <id>')
  .description('Rotate an API key; the old key stays valid for a grace period')
  .option('--grace <seconds>', 'grace period of the old key (default: the server default, 24 h)', positiveInt('--grace'))
  .action(
    action(async (client, global, project: string, keyId: string, o: { grace?: number }) => {
      const { apiKey, secret, previousApiKey } = await client.rotateApiKey({ project, keyId, graceSeconds: o.grace ?? 0 }, opts());
      if (!apiKey || !previousApiKey) throw new Error('no key returned');
      print(
        global,
        `rotated ${previousApiKey.id} → ${apiKey.id}; the old key stays valid until ${iso(previousApiKey.graceExpireTime)}. ` +
          `Store the new key now, it is not shown again:\n${secret}`,
      );
      return { ...keyJson(apiKey), key: secret, previous_key: keyJson(previousApiKey) };
    }),
  );

(await import('./commands/usage.js')).registerUsageCommand(program);
(await import('./commands/workers.js')).registerWorkerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // Commander has already printed its own usage errors (exitOverride throws afterwards).
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.startsWith('commander.')) {
    const exitCode = (err as { exitCode?: number }).exitCode ?? 1;
    process.exit(code === 'commander.helpDisplayed' || code === 'commander.version' ? 0 : exitCode);
  }
  const message = isAppError(err) || err instanceof Error ? err.message : String(err);
  process.stderr.write(`xero: ${message.split('\n')[0]}\n`);
  process.exit(1);
}
