/**
 * `xero usage <project> [--since 24h] [--by day|hour|key|endpoint|model]`: a project's usage
 * from the ledger service (gRPC), grouped. The project may be given by slug or id; the slug is
 * resolved through the auth service (`--auth`). Global options as for every xero command, plus
 * `--ledger <host:port>` (env XERO_LEDGER_ADDRESS, default 127.0.0.1:50053).
 */
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { AuthServiceDefinition } from '../../gen/xerotier/auth/v1/auth_service.js';
import { GroupBy, LedgerServiceDefinition, type UsageBucket } from '../../gen/xerotier/ledger/v1/ledger_service.js';
import { callOptions, createAppClient, createGrpcChannel } from '../../lib/grpc/client.js';
import { bucketTotals } from '../../lib/usage/bucket-totals.js';

interface UsageOptions {
  auth: string;
  ledger: string;
  serviceToken?: string | undefined;
  json?: boolean | undefined;
  since: number;
  by: keyof typeof GROUPS;
}

const GROUPS = {
  day: GroupBy.GROUP_BY_DAY,
  hour: GroupBy.GROUP_BY_HOUR,
  key: GroupBy.GROUP_BY_KEY,
  endpoint: GroupBy.GROUP_BY_ENDPOINT,
  model: GroupBy.GROUP_BY_MODEL,
} as const;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3_600, d: 86_400 };

/** `90s`, `15m`, `24h`, `7d` → seconds. */
export function parseSince(value: string): number {
  const m = /^(\d{1,6})([smhd])$/.exec(value);
  if (!m?.[1] || !m[2] || Number(m[1]) === 0) throw new InvalidArgumentError('--since must look like 90s, 15m, 24h or 7d.');
  return Number(m[1]) * (UNIT_SECONDS[m[2]] ?? 0);
}

function parseGroup(value: string): keyof typeof GROUPS {
  if (!(value in GROUPS)) throw new InvalidArgumentError('--by must be one of day, hour, key, endpoint, model.');
  return value as keyof typeof GROUPS;
}

const opts = () => callOptions(`xero_cli_${randomBytes(6).toString('hex')}`, undefined, new Date(Date.now() + 10_000));

function label(by: UsageOptions['by'], b: UsageBucket): string {
  return by === 'day' || by === 'hour' ? new Date(Number(b.group) * 1000).toISOString().slice(0, by === 'day' ? 10 : 16) : b.group;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ').trimEnd()).join('\n');
}

export function registerUsageCommand(program: Command): void {
  program
    .command('usage <project>')
    .description("Show a project's usage from the ledger, grouped")
    .addOption(new Option('--ledger <host:port>', 'ledger service address').env('XERO_LEDGER_ADDRESS').default('127.0.0.1:50053'))
    .option('--since <duration>', 'how far back: 90s, 15m, 24h, 7d', parseSince, 86_400)
    .option('--by <group>', 'day, hour, key, endpoint or model', parseGroup, 'day' as const)
    .action(async (project: string, _options: unknown, command: Command) => {
      const o = command.optsWithGlobals<UsageOptions>();
      const authChannel = createGrpcChannel(o.auth);
      const ledgerChannel = createGrpcChannel(o.ledger);
      try {
        const auth = createAppClient(AuthServiceDefinition, authChannel, { address: o.auth, target: `auth service at ${o.auth}`, serviceToken: o.serviceToken });
        const ledger = createAppClient(LedgerServiceDefinition, ledgerChannel, {
          address: o.ledger,
          target: `ledger service at ${o.ledger}`,
          serviceToken: o.serviceToken,
        });
        const { projects } = await auth.listProjects({}, opts());
        const found = projects.find((p) => p.slug === project || p.id === project);
        if (!found) throw new Error(`project ${project} not found`);
        const endTime = new Date();
        const startTime = new Date(endTime.getTime() - o.since * 1000);
        const buckets: UsageBucket[] = [];
        let after = '';
        for (;;) {
          const page = await ledger.queryUsage({ projectId: found.id, startTime, endTime, groupBy: GROUPS[o.by], pageSize: 1_000, after }, opts());
          buckets.push(...page.buckets);
          const last = page.buckets.at(-1);
          if (!page.hasMore || !last) break;
          after = last.group;
        }
        if (o.json) {
          const rows = buckets.map((b) => ({
            [o.by]: o.by === 'day' || o.by === 'hour' ? Number(b.group) : b.group,
            ...bucketTotals(b),
          }));
          process.stdout.write(`${JSON.stringify({ project: found.slug, start_time: Math.floor(startTime.getTime() / 1000), end_time: Math.floor(endTime.getTime() / 1000), group_by: o.by, data: rows }, null, 2)}\n`);
          return;
        }
        if (buckets.length === 0) {
          process.stdout.write(`no usage for ${found.slug} since ${startTime.toISOString()}\n`);
          return;
        }
        const total = (f: (b: UsageBucket) => number) => String(buckets.reduce((a, b) => a + f(b), 0));
        const rows = [
          [o.by, 'requests', 'errors', 'cancelled', 'prompt', 'completion', 'total'],
          ...buckets.map((b) => [label(o.by, b), String(b.requests), String(b.errors), String(b.cancelled), String(b.promptTokens), String(b.completionTokens), String(b.promptTokens + b.completionTokens)]),
          ['total', total((b) => b.requests), total((b) => b.errors), total((b) => b.cancelled), total((b) => b.promptTokens), total((b) => b.completionTokens), total((b) => b.promptTokens + b.completionTokens)],
        ];
        process.stdout.write(`${table(rows)}\n`);
      } finally {
        authChannel.close();
        ledgerChannel.close();
      }
    });
}
