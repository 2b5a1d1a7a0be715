/** Auth service configuration: parsed once from the environment (README "Configuration"). */
import { z } from 'zod';
import { grpcTlsEnv } from '../../../lib/grpc/tls.js';
import { bool, logLevel, parseEnv, port } from '../../../lib/config/env.js';

/**
 * Development pepper. Keys hashed with it are only as secret as this repository; app.ts logs a
 * loud warning when it is in use. Changing the pepper invalidates every stored key.
 */
export const DEV_KEY_PEPPER = 'xero-dev-pepper-change-me-in-production';

/** Unset or empty variables both mean "use the default". */
const optionalString = z.preprocess((v) => (v === '' ? undefined : v), z.string().optional());

const schema = z.object({
  AUTH_HOST: z.string().default('127.0.0.1'),
  AUTH_PORT: port(50051),
  /** Prometheus `GET /metrics` on AUTH_HOST:<port>; unset = no metrics server. */
  AUTH_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /** Unset → SQLite at AUTH_SQLITE_PATH; `postgres://…` → PostgreSQL. */
  AUTH_DATABASE_URL: z.preprocess(
    (v) => (v === '' ? undefined : v),
    z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
  ),
  /** PostgreSQL schema holding the auth tables (created when missing). */
  AUTH_DATABASE_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lowercase SQL identifier')
    .default('public'),
  /** SQLite file (directory created on first start); `:memory:` for tests. */
  AUTH_SQLITE_PATH: z.string().min(1).default('.data/auth.sqlite'),
  /** HMAC-SHA-256 pepper for stored key hashes (at least 16 characters). */
  AUTH_KEY_PEPPER: z.preprocess(
    (v) => (v === '' ? undefined : v),
    z.string().min(16, 'must be at least 16 characters').default(DEV_KEY_PEPPER),
  ),
  /** Default grace period of a rotated key (seconds; at most 30 days). */
  AUTH_ROTATION_GRACE_SECONDS: z.coerce.number().int().min(1).max(30 * 86_400).default(86_400),
  /** Create the `demo` project, its `chat` endpoint and a key on first start. */
  AUTH_SEED_DEMO: bool(true),
  /** Where the demo key is written (mode 0600); `npm start` prints it from there. */
  AUTH_DEMO_KEY_FILE: z.string().min(1).default('.data/demo-api-key'),
  /** Fleet registry: a worker that has not renewed its lease for this long is removed. */
  AUTH_REGISTRY_LEASE_TTL_MS: z.coerce.number().int().min(500).max(120_000).default(6_000),
  /** Self-hosted workers: a worker credential expires this long after enrollment or its last refresh. */
  AUTH_WORKER_CREDENTIAL_TTL_SECONDS: z.coerce.number().int().min(10).max(30 * 86_400).default(86_400),
  /** Tier table (same file as the gateway's); default config/tiers.json. */
  TIERS_FILE: optionalString,
  SERVICE_TOKEN: optionalString,
  ...grpcTlsEnv,
  LOG_LEVEL: logLevel,
});

export type AuthConfig = z.infer<typeof schema>;

export function loadAuthConfig(env: NodeJS.ProcessEnv): AuthConfig {
  return parseEnv(schema, env);
}
