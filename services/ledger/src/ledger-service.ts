/**
 * LedgerService: validates calls and maps between proto messages and store rows. Writes are
 * idempotent by request id (the store skips ids it already has); reads are always scoped to one
 * project id, which the caller (the gateway) takes from the authenticated key, never from the URL.
 */
import {
  GroupBy,
  type LedgerServiceImplementation,
  type UsageRecord,
} from '../../../gen/xerotier/ledger/v1/ledger_service.js';
import { invalidRequest, notFound } from '../../../lib/errors/app-error.js';
import type { RequestContext } from '../../../lib/grpc/server.js';
import type { GroupName, LedgerRow, LedgerStore } from './stores/store.js';

/** Largest WriteRecords batch accepted (gateways send at most 500). */
export const MAX_WRITE_BATCH = 5_000;
const MAX_PAGE = 1_000;
const MAX_ID = 128;
const MAX_TEXT = 200;

const GROUP_NAMES: Partial<Record<GroupBy, GroupName>> = {
  [GroupBy.GROUP_BY_DAY]: 'day',
  [GroupBy.GROUP_BY_HOUR]: 'hour',
  [GroupBy.GROUP_BY_KEY]: 'key',
  [GroupBy.GROUP_BY_ENDPOINT]: 'endpoint',
  [GroupBy.GROUP_BY_MODEL]: 'model',
};

function text(value: string, field: string, max: number, required = false): string {
  if (value.length > max) throw invalidRequest(`${field} is longer than ${max} characters`, { param: field });
  if (required && value === '') throw invalidRequest(`${field} is required`, { param: field });
  return value;
}

function count(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw invalidRequest(`${field} must be a non-negative integer`, { param: field });
  return value;
}

function toRow(r: UsageRecord, i: number): LedgerRow {
  const at = `records[${i}]`;
  const startedAt = r.startTime?.getTime();
  if (startedAt === undefined || !Number.isFinite(startedAt)) throw invalidRequest(`${at}.start_time is required`, { param: 'start_time' });
  if (!Number.isInteger(r.httpStatus) || r.httpStatus < 100 || r.httpStatus > 599) {
    throw invalidRequest(`${at}.http_status must be an HTTP status`, { param: 'http_status' });
  }
  return {
    requestId: text(r.requestId, `${at}.request_id`, MAX_ID, true),
    projectId: text(r.projectId, `${at}.project_id`, MAX_ID, true),
    endpoint: text(r.endpoint, `${at}.endpoint`, 64),
    keyId: text(r.keyId, `${at}.key_id`, MAX_ID, true),
    model: text(r.model, `${at}.model`, MAX_TEXT),
    workerId: text(r.workerId, `${at}.worker_id`, MAX_ID),
    hardwarePool: text(r.hardwarePool, `${at}.hardware_pool`, 40),
    tier: text(r.tier, `${at}.tier`, 64),
    httpStatus: r.httpStatus,
    errorCode: text(r.errorCode, `${at}.error_code`, 64),
    promptTokens: count(r.promptTokens, `${at}.prompt_tokens`),
    completionTokens: count(r.completionTokens, `${at}.completion_tokens`),
    cachedTokens: count(r.cachedTokens, `${at}.cached_tokens`),
    ttftMs: count(r.timeToFirstTokenMs, `${at}.time_to_first_token_ms`),
    durationMs: count(r.durationMs, `${at}.duration_ms`),
    startedAt,
    cancelled: r.cancelled,
  };
}

export function toRecord(r: LedgerRow): UsageRecord {
  return {
    requestId: r.requestId,
    projectId: r.projectId,
    endpoint: r.endpoint,
    keyId: r.keyId,
    model: r.model,
    workerId: r.workerId,
    hardwarePool: r.hardwarePool,
    tier: r.tier,
    httpStatus: r.httpStatus,
    errorCode: r.errorCode,
    promptTokens: r.promptTokens,
    completionTokens: r.completionTokens,
    cachedTokens: r.cachedTokens,
    timeToFirstTokenMs: r.ttftMs,
    durationMs: r.durationMs,
    startTime: new Date(r.startedAt),
    cancelled: r.cancelled,
  };
}

function range(req: { projectId: string; startTime?: Date | undefined; endTime?: Date | undefined; pageSize: number; after: string }) {
  const projectId = text(req.projectId, 'project_id', MAX_ID, true);
  const from = req.startTime?.getTime() ?? 0;
  const to = req.endTime?.getTime() ?? Date.now() + 1;
  if (!Number.isFinite(from) || !Number.isFinite(to) || to < from) {
    throw invalidRequest('end_time must not be before start_time', { param: 'end_time' });
  }
  if (!Number.isInteger(req.pageSize) || req.pageSize < 1 || req.pageSize > MAX_PAGE) {
    throw invalidRequest(`page_size must be between 1 and ${MAX_PAGE}`, { param: 'page_size' });
  }
  const after = text(req.after, 'after', MAX_TEXT);
  return { projectId, from, to, limit: req.pageSize, after: after === '' ? undefined : after };
}

export function createLedgerService(store: LedgerStore): LedgerServiceImplementation<RequestContext> {
  return {
    async writeRecords(req) {
      if (req.records.length > MAX_WRITE_BATCH) {
        throw invalidRequest(`at most ${MAX_WRITE_BATCH} records per call`, { param: 'records' });
      }
      const rows = req.records.map(toRow);
      const inserted = await store.insert(rows);
      return { inserted, duplicates: rows.length - inserted };
    },

    async queryUsage(req) {
      const groupBy = GROUP_NAMES[req.groupBy];
      if (groupBy === undefined) throw invalidRequest('group_by is required', { param: 'group_by' });
      const q = range(req);
      if ((groupBy === 'day' || groupBy === 'hour') && q.after !== undefined && !/^\d{1,12}$/.test(q.after)) {
        throw invalidRequest('after must be the unix time of a bucket for day and hour groupings', { param: 'after' });
      }
      const page = await store.usage({ ...q, groupBy });
      return { buckets: page.buckets, hasMore: page.hasMore };
    },

    async listRecords(req) {
      const page = await store.records(range(req));
      if (!page) throw notFound('after names no usage record of this project', { param: 'after', code: 'record_not_found' });
      return { records: page.records.map(toRecord), hasMore: page.hasMore };
    },
  };
}
