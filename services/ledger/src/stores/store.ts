/**
 * The ledger's storage contract: one row per gateway request, keyed by its request id.
 * Times are epoch milliseconds. Implemented once on Kysely (kysely-store.ts) for SQLite and
 * PostgreSQL.
 */

export interface LedgerRow {
  requestId: string;
  projectId: string;
  endpoint: string;
  keyId: string;
  model: string;
  workerId: string;
  hardwarePool: string;
  tier: string;
  httpStatus: number;
  /** Empty on success. */
  errorCode: string;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  /** 0 when no token was produced. */
  ttftMs: number;
  durationMs: number;
  startedAt: number;
  cancelled: boolean;
}

export const GROUPS = ['day', 'hour', 'key', 'endpoint', 'model'] as const;
export type GroupName = (typeof GROUPS)[number];

export interface UsageBucketRow {
  /** Key id, endpoint slug or model; for day/hour the bucket start in unix seconds. */
  group: string;
  requests: number;
  errors: number;
  cancelled: number;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
}

export interface TimeRange {
  projectId: string;
  /** Inclusive, epoch ms. */
  from: number;
  /** Exclusive, epoch ms. */
  to: number;
  limit: number;
  /** Cursor: the last group (usage) or request id (records) of the previous page. */
  after?: string | undefined;
}

export interface LedgerStore {
  readonly dialect: 'sqlite' | 'postgres';
  /** Stores rows whose request id is new and adds exactly those to the hourly and daily rollups, atomically; returns how many were new. */
  insert(rows: readonly LedgerRow[]): Promise<number>;
  usage(query: TimeRange & { groupBy: GroupName }): Promise<{ buckets: UsageBucketRow[]; hasMore: boolean }>;
  /** undefined when `after` names no record of the project. */
  records(query: TimeRange): Promise<{ records: LedgerRow[]; hasMore: boolean } | undefined>;
  /**
   * Deletes rows that started before `cutoff` (epoch ms), at most `batch` per statement, and the
   * rollup hours and days that end at or before it (a whole-day cutoff keeps them in step);
   * returns the raw rows deleted.
   */
  deleteBefore(cutoff: number, batch?: number): Promise<number>;
  /** One round trip to the database (health checks); rejects when it is unreachable. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
