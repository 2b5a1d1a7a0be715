/** Quota service configuration: parsed once from the environment (variables in README.md, behaviour in docs/quota.md). */
import { z } from 'zod';
import { grpcTlsEnv } from '../../../lib/grpc/tls.js';
import { logLevel, parseEnv, port } from '../../../lib/config/env.js';

export const FAILURE_POLICIES = ['fail-open-local', 'fail-closed'] as const;
export type FailurePolicy = (typeof FAILURE_POLICIES)[number];

/** An unset or empty variable is "not given". */
const optionalString = z.preprocess((v) => (v === '' ? undefined : v), z.string().optional());

const schema = z.object({
  /** Interface to listen on. */
  QUOTA_HOST: z.string().default('127.0.0.1'),
  /** gRPC port (0 = any free port). */
  QUOTA_PORT: port(50052),
  /** Prometheus `GET /metrics` on QUOTA_HOST:<port>; unset = no metrics server. */
  QUOTA_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /** redis:// or rediss:// URL shared by every replica; unset = in-memory store (one replica only). */
  QUOTA_REDIS_URL: z.preprocess((v) => (v === '' ? undefined : v), z.string().url().optional()),
  /** Prefix of every Redis key (lets several deployments share one Redis). */
  QUOTA_REDIS_PREFIX: z.string().min(1).default('xq:'),
  /** Per-command Redis timeout (ms); a decision never waits longer on Redis. */
  QUOTA_REDIS_TIMEOUT_MS: z.coerce.number().int().positive().max(10_000).default(50),
  /** What a decision does while Redis is unreachable (docs/quota.md "Redis failure policy"). */
  QUOTA_FAILURE_POLICY: z.enum(FAILURE_POLICIES).default('fail-open-local'),
  /** During an outage each replica enforces limit / divisor locally: set it to the replica count. */
  QUOTA_LOCAL_FALLBACK_DIVISOR: z.coerce.number().int().positive().default(1),
  /**
   * Share of a key's limit that must stay remaining after a lease is granted to a gateway
   * (0–1; 1 = no leases): below it every request is reserved one by one.
   */
  QUOTA_LEASE_HEADROOM: z.coerce.number().min(0).max(1).default(0.25),
  /** Smallest requests/min limit a lease is granted for; smaller limits are always reserved per request. */
  QUOTA_LEASE_MIN_LIMIT: z.coerce.number().int().min(1).default(10_000),
  /** Tier table file; unset = config/tiers.json. */
  TIERS_FILE: optionalString,
  /** Shared service credential required on every call (health excepted). */
  SERVICE_TOKEN: optionalString,
  ...grpcTlsEnv,
  LOG_LEVEL: logLevel,
});

export type QuotaConfig = z.infer<typeof schema>;

export function loadQuotaConfig(env: NodeJS.ProcessEnv): QuotaConfig {
  return parseEnv(schema, env);
}
