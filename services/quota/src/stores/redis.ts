/**
 * Redis sliding-window log shared by every quota replica: one Lua script per operation
 * (ioredis `defineCommand`: EVALSHA, loading the script on NOSCRIPT), so each decision is atomic
 * across replicas. Semantics in store.ts; scripts and key layout in redis-scripts.ts.
 *
 * The client is built for a limiter that must never make a request wait on Redis (see
 * test/quota/redis-outage.test.ts: decisions stay fast while Redis is killed or frozen):
 * no offline queue (commands fail at once while disconnected), a bounded `commandTimeout`
 * (backstop; the per-call budget is enforced lag-aware by failover-store.ts), at most one retry
 * per command, and reconnection every ≤ 500 ms so enforcement returns quickly.
 * Failure policy lives in failover-store.ts, not here: this store just throws.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { LEASE_LUA, PEEK_LUA, RELEASE_LEASE_LUA, RESERVE_LUA, SETTLE_LUA } from './redis-scripts.js';
import {
  dimension,
  type DeniedBy,
  type LeaseOutcome,
  type LimitPolicy,
  type QuotaStore,
  type ReserveOutcome,
  type SettleOutcome,
  type WindowSnapshot,
} from './store.js';

export interface RedisStoreOptions {
  /** Prefix of every key, e.g. `xq:`. */
  prefix: string;
  /**
   * The per-call budget (QUOTA_REDIS_TIMEOUT_MS). The failover store enforces it lag-aware
   * (failover-store.ts `withLagAwareTimeout`); ioredis's own `commandTimeout` is set to
   * max(10 × budget, 500 ms), a backstop that bounds how long a command can stay queued
   * against a blackholed server without firing falsely when this process is merely busy.
   */
  commandTimeoutMs: number;
}

export const backstopTimeoutMs = (budgetMs: number): number => Math.max(10 * budgetMs, 500);

export interface RedisStore extends QuotaStore {
  readonly redis: Redis;
  /** True when commands can be sent right now (connected and ready). */
  ready(): boolean;
  /** Resolves true once ready, false after timeoutMs. */
  waitReady(timeoutMs: number): Promise<boolean>;
  /** The two keys of a scope (tests, operations). */
  keys(scope: string): [log: string, hash: string];
}

type Reply = number[];
type ScriptFn = (log: string, hash: string, ...args: Array<string | number>) => Promise<Reply>;

export function redisClientOptions(budgetMs: number): RedisOptions {
  return {
    enableOfflineQueue: false,
    commandTimeout: backstopTimeoutMs(budgetMs),
    maxRetriesPerRequest: 1,
    connectTimeout: 1_000,
    // Reconnect quickly and keep trying forever: full enforcement resumes ≤ 1 s after Redis is back.
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 4), 500),
    enableReadyCheck: true,
    lazyConnect: false,
  };
}

/** Creates the store over a new ioredis client for `url`. */
export function createRedisStore(url: string, options: RedisStoreOptions): RedisStore {
  return createRedisStoreFromClient(new Redis(url, redisClientOptions(options.commandTimeoutMs)), options.prefix);
}

/** Creates the store over an existing client (which it then owns and closes). */
export function createRedisStoreFromClient(redis: Redis, prefix: string): RedisStore {
  // Without a listener ioredis prints every connection error; the failover store logs outages once.
  if (redis.listenerCount('error') === 0) redis.on('error', () => {});
  redis.defineCommand('xqReserve', { numberOfKeys: 2, lua: RESERVE_LUA });
  redis.defineCommand('xqSettle', { numberOfKeys: 2, lua: SETTLE_LUA });
  redis.defineCommand('xqPeek', { numberOfKeys: 2, lua: PEEK_LUA });
  redis.defineCommand('xqLease', { numberOfKeys: 2, lua: LEASE_LUA });
  redis.defineCommand('xqReleaseLease', { numberOfKeys: 2, lua: RELEASE_LEASE_LUA });
  const commands = redis as unknown as Record<'xqReserve' | 'xqSettle' | 'xqPeek' | 'xqLease' | 'xqReleaseLease', ScriptFn>;
  // Load the scripts on every (re)connection, so the first decision after a start or a Redis
  // restart is one EVALSHA, not EVALSHA → NOSCRIPT → EVAL + compile (which can miss the budget).
  let scriptsLoaded: Promise<void> = Promise.resolve();
  const loadScripts = (): void => {
    scriptsLoaded = Promise.all([RESERVE_LUA, SETTLE_LUA, PEEK_LUA, LEASE_LUA, RELEASE_LEASE_LUA].map((lua) => redis.script('LOAD', lua)))
      .then(() => undefined)
      .catch(() => undefined); // not fatal: ioredis falls back to EVAL on NOSCRIPT
  };
  redis.on('ready', loadScripts);
  if (redis.status === 'ready') loadScripts();

  const keys = (scope: string): [string, string] => {
    // Hash tag: both keys of a scope live in one cluster slot (scripts touch only one scope).
    const tag = `${prefix}{${scope}}`;
    return [`${tag}:l`, `${tag}:t`];
  };
  const limitArg = (limit: number | null): number => (limit === null ? -1 : limit);
  const policyArgs = (policy: LimitPolicy, now: number): number[] => [
    Math.floor(now),
    policy.windowMs,
    limitArg(policy.requests),
    limitArg(policy.tokens),
  ];
  const snapshot = (reply: Reply, at: number, policy: LimitPolicy): WindowSnapshot => ({
    requests: dimension(policy.requests, num(reply[at]), num(reply[at + 1])),
    tokens: dimension(policy.tokens, num(reply[at + 2]), num(reply[at + 3])),
  });

  return {
    kind: 'redis',
    redis,
    keys,
    ready: () => redis.status === 'ready',
    async waitReady(timeoutMs) {
      const ready =
        redis.status === 'ready' ||
        (await new Promise<boolean>((resolve) => {
          const done = (ok: boolean): void => {
            clearTimeout(timer);
            redis.off('ready', onReady);
            resolve(ok);
          };
          const onReady = (): void => done(true);
          const timer = setTimeout(() => done(false), timeoutMs);
          redis.on('ready', onReady);
        }));
      if (ready) await scriptsLoaded;
      return ready;
    },
    async reserve(scope, input, policy, now): Promise<ReserveOutcome> {
      const [log, hash] = keys(scope);
      const r = await commands.xqReserve(log, hash, ...policyArgs(policy, now), input.requestId, String(input.tokens));
      const deniedBy: DeniedBy | null = r[2] === 1 ? 'requests' : r[2] === 2 ? 'tokens' : null;
      return {
        allowed: r[0] === 1,
        duplicate: r[1] === 1,
        deniedBy,
        retryAfterMs: num(r[3]),
        retryable: r[4] === 1,
        ...snapshot(r, 5, policy),
      };
    },
    async settle(scope, input, policy, now): Promise<SettleOutcome> {
      const [log, hash] = keys(scope);
      const r = await commands.xqSettle(log, hash, ...policyArgs(policy, now), input.requestId, String(input.tokens));
      return { applied: r[0] === 1, tokens: snapshot(r, 1, policy).tokens };
    },
    async lease(scope, input, policy, now): Promise<LeaseOutcome> {
      const [log, hash] = keys(scope);
      const r = await commands.xqLease(
        log,
        hash,
        ...policyArgs(policy, now),
        input.leaseId,
        String(input.requests),
        String(input.tokens),
        String(input.headroom),
      );
      return { grantedRequests: num(r[0]), grantedTokens: num(r[1]), ...snapshot(r, 2, policy) };
    },
    async releaseLease(scope, input, policy, now): Promise<SettleOutcome> {
      const [log, hash] = keys(scope);
      const r = await commands.xqReleaseLease(
        log,
        hash,
        ...policyArgs(policy, now),
        input.leaseId,
        String(input.unusedRequests),
        String(input.unusedTokens),
      );
      return { applied: r[0] === 1, tokens: snapshot(r, 1, policy).tokens };
    },
    async peek(scope, policy, now): Promise<WindowSnapshot> {
      const [log, hash] = keys(scope);
      return snapshot(await commands.xqPeek(log, hash, ...policyArgs(policy, now)), 0, policy);
    },
    async close() {
      // Never wait on a dead server: quit politely only when connected, bounded.
      if (redis.status === 'ready') {
        await Promise.race([redis.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 200).unref())]);
      }
      redis.disconnect();
    },
  };
}

function num(v: number | undefined): number {
  if (typeof v !== 'number') throw new Error('malformed quota script reply');
  return v;
}
