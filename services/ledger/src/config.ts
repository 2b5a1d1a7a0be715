/** Ledger service configuration: parsed once from the environment (docs/ledger.md). */
import { z } from 'zod';
import { grpcTlsEnv } from '../../../lib/grpc/tls.js';
import { logLevel, parseEnv, port } from '../../../lib/config/env.js';

/** Unset or empty variables both mean "use the default". */
const optionalString = z.preprocess((v) => (v === '' ? undefined : v), z.string().optional());

const schema = z.object({
  LEDGER_HOST: z.string().default('127.0.0.1'),
  /** gRPC port (0 = any free port). */
  LEDGER_PORT: port(50053),
  /** Prometheus `GET /metrics` on LEDGER_HOST:<port>; unset = no metrics server. */
  LEDGER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /** Unset → SQLite at LEDGER_SQLITE_PATH; `postgres://…` → PostgreSQL. */
  LEDGER_DATABASE_URL: z.preprocess(
    (v) => (v === '' ? undefined : v),
    z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
  ),
  /** PostgreSQL schema holding the ledger table (created when missing). */
  LEDGER_DATABASE_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lowercase SQL identifier')
    .default('public'),
  /** SQLite file (directory created on first start); `:memory:` for tests. */
  LEDGER_SQLITE_PATH: z.string().min(1).default('.data/ledger.sqlite'),
  /** Records older than this many days are deleted; 0 keeps them forever. */
  LEDGER_RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(90),
  /** How often the retention delete runs (ms); it also runs once at start. */
  LEDGER_RETENTION_INTERVAL_MS: z.coerce.number().int().min(1_000).default(3_600_000),
  ...grpcTlsEnv,
  SERVICE_TOKEN: optionalString,
  LOG_LEVEL: logLevel,
});

export type LedgerConfig = z.infer<typeof schema>;

export function loadLedgerConfig(env: NodeJS.ProcessEnv): LedgerConfig {
  return parseEnv(schema, env);
}
