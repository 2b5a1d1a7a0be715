/** Gateway configuration: parsed once from the environment (README "Configuration"). */
import { z } from 'zod';
import { logLevel, parseEnv, port } from '../../lib/config/env.js';
import { grpcTlsEnv } from '../../lib/grpc/tls.js';
import { routingEnv } from './fleet/scoring/settings.js';

const workerList = z
  .string()
  .default('cpu=127.0.0.1:50061')
  .transform((s, ctx) => {
    const workers: Array<{ pool: string; address: string }> = [];
    for (const item of s.split(',').map((x) => x.trim()).filter(Boolean)) {
      const m = /^([a-z0-9-]+)=([^=\s]+:\d+)$/.exec(item);
      if (!m?.[1] || !m[2]) {
        ctx.addIssue({ code: 'custom', message: `"${item}" is not pool=host:port` });
        return z.NEVER;
      }
      workers.push({ pool: m[1], address: m[2] });
    }
    return workers;
  });

/** `auto` or an integer ≥ 1 (README "Several gateway processes"); `auto` is resolved by the primary. */
const processCount = z
  .preprocess((v) => (v === '' ? undefined : v), z.string().default('1'))
  .transform((s, ctx): number | 'auto' => {
    const v = s.trim().toLowerCase();
    if (v === 'auto') return 'auto';
    if (/^[1-9]\d{0,3}$/.test(v)) return Number(v);
    ctx.addIssue({ code: 'custom', message: `"${s}" is not an integer from 1 to 9999 or "auto"` });
    return z.NEVER;
  });

const schema = z.object({
  /**
   * Gateway processes sharing GATEWAY_PORT and GATEWAY_GRPC_PORT (node:cluster); 1 = one plain
   * process as without it, `auto` = one per available core.
   */
  GATEWAY_PROCESSES: processCount,
  GATEWAY_HOST: z.string().default('127.0.0.1'),
  GATEWAY_PORT: port(8080),
  /** The gRPC front door (xerotier.gateway.v1.ChatService) on the same host. */
  GATEWAY_GRPC_PORT: port(8081),
  /** Prometheus `GET /metrics` on its own port (kept off the public API port); unset = off. */
  GATEWAY_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /** DNS-based URLs: `{endpoint}.{project}.<GATEWAY_BASE_DOMAIN>/v1/...`. */
  GATEWAY_BASE_DOMAIN: z.string().default('api.localhost').transform((s) => s.toLowerCase()),
  GATEWAY_BODY_LIMIT: z.string().default('1mb'),
  /** A client must send its request headers within this time (slow-header connections end). */
  GATEWAY_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(1000).default(10_000),
  /** A client must send its whole request (headers and body) within this time; the response is not limited by it. */
  GATEWAY_REQUEST_RECEIVE_TIMEOUT_MS: z.coerce.number().int().min(1000).default(30_000),
  AUTH_ADDRESS: z.string().default('127.0.0.1:50051'),
  QUOTA_ADDRESS: z.string().default('127.0.0.1:50052'),
  /** Usage ledger (one record per request); `off` disables recording and the usage routes answer 503. */
  LEDGER_ADDRESS: z.string().default('127.0.0.1:50053'),
  /** Usage records wait at most this long (ms) to share one batch to the ledger. */
  GATEWAY_USAGE_FLUSH_MS: z.coerce.number().int().min(1).max(10_000).default(100),
  /** A batch goes out at once when this many records are waiting. */
  GATEWAY_USAGE_BATCH_MAX: z.coerce.number().int().min(1).max(5_000).default(500),
  /** Records buffered while the ledger is unreachable; beyond this they are dropped (and counted). */
  GATEWAY_USAGE_BUFFER_MAX: z.coerce.number().int().min(1).default(100_000),
  /** On shutdown, how long the gateway keeps trying to deliver buffered records (ms). */
  GATEWAY_USAGE_CLOSE_TIMEOUT_MS: z.coerce.number().int().min(0).default(3_000),
  /** Directory where undelivered usage records are kept on disk, so a killed gateway delivers them after its restart; unset = memory only. */
  GATEWAY_USAGE_SPOOL_DIR: z.preprocess((v) => (v === '' ? undefined : v), z.string().optional()),
  /** Comma-separated `pool=host:port` list of inference workers known at start (a static seed). */
  INFERENCE_WORKERS: workerList,
  /**
   * Fleet registry to watch for workers that join and leave at run time: host:port, unset = the
   * auth service (which hosts it), `off` = static workers only.
   */
  GATEWAY_REGISTRY_ADDRESS: z.string().optional(),
  /** After a registry restart, a known worker missing from the new snapshot is kept this long. */
  GATEWAY_REGISTRY_STALE_MS: z.coerce.number().int().min(0).default(10_000),
  /** Self-hosted worker tunnels: how often the worker's credential is re-checked (the revocation bound). */
  GATEWAY_WORKER_CHECK_INTERVAL_MS: z.coerce.number().int().min(100).max(5000).default(2000),
  /** Worker choice: strategy, score weights, exploration (fleet/scoring/settings.ts). */
  ...routingEnv,
  ...grpcTlsEnv,
  /** Upper bound for a revoked key to be refused on every replica (auth cache TTL). */
  GATEWAY_AUTH_CACHE_TTL_MS: z.coerce.number().int().min(0).max(5000).default(5000),
  GATEWAY_AUTH_CACHE_MAX_ENTRIES: z.coerce.number().int().positive().default(10_000),
  /** What to do when the quota service cannot be reached: refuse (503) or admit without limits. */
  GATEWAY_QUOTA_FAILURE_POLICY: z.enum(['fail-closed', 'fail-open']).default('fail-closed'),
  /**
   * Quota leases for hot keys (gateway/src/quota-leases.ts): a key with at least
   * GATEWAY_QUOTA_LEASE_HOT_REQUESTS requests within GATEWAY_QUOTA_LEASE_HOT_WINDOW_MS is admitted
   * from blocks of its limits leased for GATEWAY_QUOTA_LEASE_LIFETIME_MS instead of one Reserve
   * per request. `off` = always reserve per request.
   */
  GATEWAY_QUOTA_LEASES: z.enum(['on', 'off']).default('on'),
  GATEWAY_QUOTA_LEASE_LIFETIME_MS: z.coerce.number().int().min(50).max(10_000).default(500),
  GATEWAY_QUOTA_LEASE_HOT_REQUESTS: z.coerce.number().int().min(1).default(8),
  GATEWAY_QUOTA_LEASE_HOT_WINDOW_MS: z.coerce.number().int().min(50).max(60_000).default(1_000),
  /**
   * How generations travel to dialled workers: `channel` = as messages on one long-lived
   * GenerateChannel stream per worker (fleet/generate-channel.ts), `stream` = one Generate call
   * (one HTTP/2 stream) each.
   */
  GATEWAY_WORKER_CALLS: z.enum(['channel', 'stream']).default('channel'),
  /** Time to first token before a worker attempt counts as failed (breaker timeout). */
  GATEWAY_TTFT_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
  GATEWAY_UNARY_TIMEOUT_MS: z.coerce.number().int().positive().default(2_000),
  GATEWAY_BREAKER_ERROR_PERCENT: z.coerce.number().min(1).max(100).default(50),
  GATEWAY_BREAKER_VOLUME: z.coerce.number().int().min(1).default(10),
  GATEWAY_BREAKER_RESET_MS: z.coerce.number().int().positive().default(10_000),
  GATEWAY_BREAKER_WINDOW_MS: z.coerce.number().int().positive().default(10_000),
  /** On shutdown, streams get this long to finish before they end with an error event. */
  GATEWAY_DRAIN_GRACE_MS: z.coerce.number().int().min(0).default(25_000),
  TIERS_FILE: z.string().optional(),
  SERVICE_TOKEN: z.string().optional(),
  LOG_LEVEL: logLevel,
});

export type GatewayConfig = z.infer<typeof schema>;

export function loadGatewayConfig(env: NodeJS.ProcessEnv): GatewayConfig {
  return parseEnv(schema, env);
}

/** How many gateway processes GATEWAY_PROCESSES asks for, given the cores available (os.availableParallelism()). */
export function gatewayProcessCount(setting: GatewayConfig['GATEWAY_PROCESSES'], available: number): number {
  return setting === 'auto' ? Math.max(1, available) : setting;
}
