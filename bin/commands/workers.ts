/**
 * Self-hosted workers from the command line (gRPC to the auth service's WorkerService, as the
 * operator):
 *
 *   xero join-keys create <project> [--name <name>] [--max-uses <n>] [--expires-in <seconds>]
 *   xero join-keys list <project>
 *   xero join-keys revoke <project> <id>
 *   xero workers list <project>
 *   xero workers revoke <project> <id>
 *
 * Global options as for every xero command (--auth, --service-token, --json).
 */
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError, type Command } from 'commander';
import { WorkerServiceDefinition, type JoinKey, type SelfHostedWorker } from '../../gen/xerotier/workers/v1/worker_service.js';
import { callOptions, createAppClient, createGrpcChannel, type AppClient } from '../../lib/grpc/client.js';
import { workerStateName } from '../../lib/workers/states.js';

interface GlobalOptions {
  auth: string;
  serviceToken?: string | undefined;
  json?: boolean | undefined;
}

type WorkersClient = AppClient<typeof WorkerServiceDefinition>;

const unix = (d: Date | undefined): number | null => (d === undefined ? null : Math.floor(d.getTime() / 1000));
const iso = (d: Date | undefined): string => (d === undefined ? '-' : d.toISOString());
const opts = () => callOptions(`xero_cli_${randomBytes(6).toString('hex')}`, undefined, new Date(Date.now() + 10_000));

const joinKeyJson = (k: JoinKey) => ({
  id: k.id,
  project_id: k.projectId,
  name: k.name,
  prefix: k.prefix,
  max_uses: k.maxUses === 0 ? null : k.maxUses,
  uses: k.useCount,
  expires_at: unix(k.expireTime),
  revoked: k.revoked,
  created_at: unix(k.createTime),
});
const workerJson = (w: SelfHostedWorker) => ({
  id: w.id,
  project_id: w.projectId,
  name: w.name,
  state: workerStateName(w.state),
  model: w.model === '' ? null : w.model,
  join_key_id: w.joinKeyId,
  last_seen_at: unix(w.lastSeenTime),
  credential_expires_at: unix(w.credentialExpireTime),
  created_at: unix(w.createTime),
});

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

function positiveInt(name: string) {
  return (value: string): number => {
    const n = /^\d{1,9}$/.test(value) ? Number(value) : NaN;
    if (!(n >= 1)) throw new InvalidArgumentError(`${name} must be a positive integer.`);
    return n;
  };
}

/** Runs one command with a WorkerService client; prints `result` as JSON with --json, else `text`. */
function action<A extends unknown[]>(run: (client: WorkersClient, ...args: A) => Promise<{ json: unknown; text: string }>) {
  return async (...args: unknown[]): Promise<void> => {
    const command = args.at(-1) as Command;
    const global = command.optsWithGlobals<GlobalOptions>();
    const channel = createGrpcChannel(global.auth);
    try {
      const client = createAppClient(WorkerServiceDefinition, channel, {
        address: global.auth,
        target: `auth service at ${global.auth}`,
        serviceToken: global.serviceToken,
      });
      const out = await run(client, ...(args.slice(0, -1) as A));
      process.stdout.write(`${global.json ? JSON.stringify(out.json, null, 2) : out.text}\n`);
    } finally {
      channel.close();
    }
  };
}

export function registerWorkerCommands(program: Command): void {
  const joinKeys = program.command('join-keys').description('Manage join keys (enroll self-hosted workers)');
  joinKeys
    .command('create <project>')
    .description('Create a join key; its secret is printed once')
    .option('--name <name>', 'display name', '')
    .option('--max-uses <n>', 'enrollments allowed (default unlimited)', positiveInt('--max-uses'))
    .option('--expires-in <seconds>', 'lifetime in seconds (default 7 days, at most 365 days)', positiveInt('--expires-in'))
    .action(
      action(async (client, project: string, o: { name: string; maxUses?: number; expiresIn?: number }) => {
        const { joinKey, secret } = await client.createJoinKey(
          {
            project,
            name: o.name,
            maxUses: o.maxUses ?? 0,
            expireTime: o.expiresIn === undefined ? undefined : new Date(Date.now() + o.expiresIn * 1000),
          },
          opts(),
        );
        if (!joinKey) throw new Error('auth returned no join key');
        return {
          json: { ...joinKeyJson(joinKey), key: secret },
          text: `created join key ${joinKey.id}, expires ${iso(joinKey.expireTime)}\n${secret}\n(shown once: start a worker with INFERENCE_JOIN_KEY set to it)`,
        };
      }),
    );
  joinKeys
    .command('list <project>')
    .description("List a project's join keys")
    .action(
      action(async (client, project: string) => {
        const { joinKeys: list } = await client.listJoinKeys({ project }, opts());
        const rows = list.map((k) => [
          k.id,
          k.name,
          k.prefix,
          `${k.useCount}/${k.maxUses === 0 ? '∞' : k.maxUses}`,
          iso(k.expireTime),
          k.revoked ? 'revoked' : k.expireTime && k.expireTime.getTime() <= Date.now() ? 'expired' : 'active',
        ]);
        return { json: list.map(joinKeyJson), text: table([['ID', 'NAME', 'PREFIX', 'USES', 'EXPIRES', 'STATUS'], ...rows]) };
      }),
    );
  joinKeys
    .command('revoke <project> <id>')
    .description('Revoke a join key: no more enrollments, and its workers are cut off')
    .action(
      action(async (client, project: string, id: string) => {
        const { joinKey } = await client.revokeJoinKey({ project, joinKeyId: id }, opts());
        if (!joinKey) throw new Error('auth returned no join key');
        return { json: joinKeyJson(joinKey), text: `revoked join key ${joinKey.id}` };
      }),
    );

  const workers = program.command('workers').description('Self-hosted workers');
  workers
    .command('list <project>')
    .description("List a project's self-hosted workers and their states")
    .action(
      action(async (client, project: string) => {
        const { workers: list } = await client.listWorkers({ project }, opts());
        const rows = list.map((w) => [w.id, w.name, workerStateName(w.state), w.model || '-', iso(w.lastSeenTime)]);
        return { json: list.map(workerJson), text: table([['ID', 'NAME', 'STATE', 'MODEL', 'LAST SEEN'], ...rows]) };
      }),
    );
  workers
    .command('revoke <project> <id>')
    .description('Revoke a worker: its credential stops working and its tunnel closes')
    .action(
      action(async (client, project: string, id: string) => {
        const { worker } = await client.revokeWorker({ project, workerId: id }, opts());
        if (!worker) throw new Error('auth returned no worker');
        return { json: workerJson(worker), text: `revoked worker ${worker.id}` };
      }),
    );
}
