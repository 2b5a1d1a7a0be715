/**
 * The figures of one usage bucket as the HTTP API and `xero usage --json` show them (snake_case,
 * with the total the ledger does not store). One home so the two never disagree.
 */
import type { UsageBucket } from '../../gen/xerotier/ledger/v1/ledger_service.js';

export interface BucketTotals {
  requests: number;
  errors: number;
  cancelled: number;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  total_tokens: number;
}

export function bucketTotals(b: UsageBucket): BucketTotals {
  return {
    requests: b.requests,
    errors: b.errors,
    cancelled: b.cancelled,
    prompt_tokens: b.promptTokens,
    completion_tokens: b.completionTokens,
    cached_tokens: b.cachedTokens,
    total_tokens: b.promptTokens + b.completionTokens,
  };
}
