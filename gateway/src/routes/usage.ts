/**
 * Usage reads: `GET /{project}/v1/usage` (sums grouped by day, hour, key, endpoint or model) and
 * `GET /{project}/v1/usage/records` (raw records), answered by the ledger service. Authenticated
 * like the management routes: a key with the `management` scope of the URL's project; the ledger
 * is always asked about the key's own project, so another project's usage is never readable
 * (a key of another project gets 403 `cross_project_access` from auth). Times are unix seconds.
 */
import express, { type Request, type Response } from 'express';
import { Scope } from '../../../gen/xerotier/auth/v1/auth_service.js';
import type { AuthPort } from '../upstreams.js';
import { GroupBy, type UsageRecord } from '../../../gen/xerotier/ledger/v1/ledger_service.js';
import { AppError, invalidRequest } from '../../../lib/errors/app-error.js';
import { bucketTotals } from '../../../lib/usage/bucket-totals.js';
import { callOptions } from '../../../lib/grpc/client.js';
import { bearerKey } from '../bearer.js';
import type { LedgerClient } from '../usage/recorder.js';

export interface UsageRouteDeps {
  /** Authenticates the caller (management scope) through the gateway's auth port. */
  auth: AuthPort;
  /** undefined when the gateway runs without a ledger (LEDGER_ADDRESS=off). */
  ledger: LedgerClient | undefined;
  timeoutMs?: number | undefined;
}

const GROUPS: Record<string, GroupBy> = {
  day: GroupBy.GROUP_BY_DAY,
  hour: GroupBy.GROUP_BY_HOUR,
  key: GroupBy.GROUP_BY_KEY,
  endpoint: GroupBy.GROUP_BY_ENDPOINT,
  model: GroupBy.GROUP_BY_MODEL,
};
const MAX_UNIX_SECONDS = 253_402_300_799;
const DAY_SECONDS = 86_400;

function single(req: Request, name: string): string | undefined {
  const v = req.query[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalidRequest(`${name} must be given once.`, { param: name });
  return v;
}

function unixParam(req: Request, name: string): number | undefined {
  const v = single(req, name);
  if (v === undefined) return undefined;
  if (!/^\d{1,12}$/.test(v) || Number(v) > MAX_UNIX_SECONDS) {
    throw invalidRequest(`${name} must be a unix time in seconds.`, { param: name });
  }
  return Number(v);
}

function limitParam(req: Request, fallback: number): number {
  const v = single(req, 'limit');
  if (v === undefined) return fallback;
  const n = /^\d{1,4}$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1 && n <= 1000)) throw invalidRequest('limit must be an integer between 1 and 1000.', { param: 'limit' });
  return n;
}

/** Refuses query parameters we do not know instead of silently ignoring them. */
function onlyKnown(req: Request, known: readonly string[]): void {
  const unknown = Object.keys(req.query).find((k) => !known.includes(k));
  if (unknown !== undefined) throw invalidRequest(`Unknown query parameter: ${unknown.slice(0, 64)}.`, { param: unknown.slice(0, 64) });
}

/** start_time defaults to 24 h before end_time, end_time to now. */
function timeRange(req: Request): { startTime: Date; endTime: Date } {
  const end = unixParam(req, 'end_time') ?? Math.floor(Date.now() / 1000) + 1;
  const start = unixParam(req, 'start_time') ?? Math.max(0, end - DAY_SECONDS);
  if (end < start) throw invalidRequest('end_time must not be before start_time.', { param: 'end_time' });
  return { startTime: new Date(start * 1000), endTime: new Date(end * 1000) };
}

const unix = (d: Date | undefined): number | null => (d === undefined ? null : Math.floor(d.getTime() / 1000));

export function recordObject(r: UsageRecord) {
  return {
    object: 'usage.record' as const,
    id: r.requestId,
    endpoint: r.endpoint,
    api_key_id: r.keyId,
    model: r.model,
    worker_id: r.workerId === '' ? null : r.workerId,
    hardware_pool: r.hardwarePool,
    tier: r.tier,
    status: r.httpStatus,
    error_code: r.errorCode === '' ? null : r.errorCode,
    prompt_tokens: r.promptTokens,
    completion_tokens: r.completionTokens,
    cached_tokens: r.cachedTokens,
    total_tokens: r.promptTokens + r.completionTokens,
    time_to_first_token_ms: r.timeToFirstTokenMs === 0 ? null : r.timeToFirstTokenMs,
    duration_ms: r.durationMs,
    started_at: unix(r.startTime),
    cancelled: r.cancelled,
  };
}

export function usageRouter(deps: UsageRouteDeps): express.Router {
  const router = express.Router({ mergeParams: true });
  const timeoutMs = deps.timeoutMs ?? 10_000;
  const opts = (res: Response) => callOptions(String(res.locals['requestId'] ?? 'none'), undefined, new Date(Date.now() + timeoutMs));
  const requestId = (res: Response): string => String(res.locals['requestId'] ?? 'none');

  async function projectOf(req: Request, res: Response): Promise<{ projectId: string; ledger: LedgerClient }> {
    const principal = await deps.auth.authenticate(
      { apiKey: bearerKey(req), project: String(req.params['project'] ?? ''), endpoint: '', scope: Scope.SCOPE_MANAGEMENT },
      requestId(res),
    );
    const projectId = principal.project?.id;
    if (!projectId) throw new AppError('internal', 'auth returned no project');
    if (!deps.ledger) {
      throw new AppError('unavailable', 'Usage reporting is not enabled on this gateway.', { code: 'usage_unavailable', retryAfterSeconds: 60 });
    }
    res.set('cache-control', 'no-store');
    return { projectId, ledger: deps.ledger };
  }

  router.get('/', async (req, res) => {
    const { projectId, ledger } = await projectOf(req, res);
    onlyKnown(req, ['start_time', 'end_time', 'group_by', 'limit', 'after']);
    const groupName = single(req, 'group_by') ?? 'day';
    const groupBy = GROUPS[groupName];
    if (groupBy === undefined) throw invalidRequest('group_by must be one of day, hour, key, endpoint, model.', { param: 'group_by' });
    const after = single(req, 'after') ?? '';
    if ((groupName === 'day' || groupName === 'hour') && after !== '' && !/^\d{1,12}$/.test(after)) {
      throw invalidRequest('after must be the start_time of a bucket (unix seconds) for this grouping.', { param: 'after' });
    }
    const range = timeRange(req);
    const page = await ledger.queryUsage(
      { projectId, ...range, groupBy, pageSize: limitParam(req, 100), after: after.slice(0, 200) },
      opts(res),
    );
    const timeGrouped = groupName === 'day' || groupName === 'hour';
    const data = page.buckets.map((b) => ({
      object: 'usage.bucket' as const,
      group_by: groupName,
      ...(timeGrouped ? { start_time: Number(b.group) } : { [groupName === 'key' ? 'api_key_id' : groupName]: b.group }),
      ...bucketTotals(b),
    }));
    res.json({
      object: 'list',
      start_time: unix(range.startTime),
      end_time: unix(range.endTime),
      data,
      // Pass as `after` to get the next page.
      last_id: page.buckets.at(-1)?.group ?? null,
      has_more: page.hasMore,
    });
  });

  router.get('/records', async (req, res) => {
    const { projectId, ledger } = await projectOf(req, res);
    onlyKnown(req, ['start_time', 'end_time', 'limit', 'after']);
    const page = await ledger.listRecords(
      { projectId, ...timeRange(req), pageSize: limitParam(req, 100), after: (single(req, 'after') ?? '').slice(0, 200) },
      opts(res),
    );
    const data = page.records.map(recordObject);
    res.json({ object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: page.hasMore });
  });

  return router;
}
