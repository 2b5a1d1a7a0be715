/**
 * The gateway's failure table: what each kind of trouble answers over HTTP (status, code,
 * Retry-After) and over gRPC (status), through the same lib/errors mappings the boundaries use.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Metadata, Status } from 'nice-grpc';
import { AppError } from '../../lib/errors/app-error.js';
import { toServerError } from '../../lib/errors/grpc.js';
import { toHttpError } from '../../lib/errors/http.js';
import { authFailure, draining, openFailure, quotaFailure, rateLimited, streamFailure, ttftTimeout } from './failure-policy.js';

function answer(err: unknown) {
  const http = toHttpError(err);
  return { http: http.status, code: http.body.error.code, retryAfter: http.headers['retry-after'], grpc: toServerError(err, Metadata()).code };
}

const workerLost = new AppError('cancelled', 'request cancelled');

describe('gateway failure policy', () => {
  it('maps every gateway-side failure to one status and code', () => {
    const denial = { decision: 2, retryable: true, retryAfterMs: 2500, deniedBy: 'requests' } as Parameters<typeof rateLimited>[0];
    const cases: Array<[string, unknown, ReturnType<typeof answer>]> = [
      ['auth service down', authFailure(new AppError('internal', 'x')), { http: 503, code: 'auth_unavailable', retryAfter: '1', grpc: Status.UNAVAILABLE }],
      ['quota down, fail-closed', quotaFailure('fail-closed', new Error('x')), { http: 503, code: 'quota_unavailable', retryAfter: '1', grpc: Status.UNAVAILABLE }],
      ['rate limited', rateLimited(denial), { http: 429, code: 'rate_limit_exceeded', retryAfter: '3', grpc: Status.RESOURCE_EXHAUSTED }],
      ['never fits', rateLimited({ ...denial, retryable: false }), { http: 429, code: 'tokens_exceed_limit', retryAfter: '60', grpc: Status.RESOURCE_EXHAUSTED }],
      ['no first token from a worker', ttftTimeout(), { http: 504, code: 'upstream_timeout', retryAfter: undefined, grpc: Status.DEADLINE_EXCEEDED }],
      ['deadline before the first token', openFailure('request_timeout', workerLost), { http: 504, code: 'request_timeout', retryAfter: undefined, grpc: Status.DEADLINE_EXCEEDED }],
      ['draining', draining(), { http: 503, code: 'gateway_draining', retryAfter: '1', grpc: Status.UNAVAILABLE }],
      ['shutdown before the first token', openFailure('shutdown', workerLost), { http: 503, code: 'gateway_draining', retryAfter: '1', grpc: Status.UNAVAILABLE }],
      ['shutdown mid-stream', streamFailure('shutdown', workerLost), { http: 503, code: 'gateway_draining', retryAfter: '1', grpc: Status.UNAVAILABLE }],
      ['deadline mid-stream', streamFailure('request_timeout', workerLost), { http: 504, code: 'request_timeout', retryAfter: undefined, grpc: Status.DEADLINE_EXCEEDED }],
      ['idle mid-stream', streamFailure('idle_timeout', workerLost), { http: 504, code: 'stream_idle_timeout', retryAfter: undefined, grpc: Status.DEADLINE_EXCEEDED }],
      ['worker lost mid-stream', streamFailure(undefined, workerLost), { http: 503, code: 'stream_interrupted', retryAfter: '1', grpc: Status.UNAVAILABLE }],
    ];
    for (const [what, err, expected] of cases) assert.deepEqual(answer(err), expected, what);
  });

  it('fail-open admits without limits, and caller errors pass through every policy unchanged', () => {
    assert.equal(quotaFailure('fail-open', new Error('x')), undefined);
    const callerError = new AppError('invalid_request', 'bad');
    assert.equal(quotaFailure('fail-open', callerError), callerError);
    assert.equal(authFailure(callerError), callerError);
    assert.equal(openFailure(undefined, callerError), callerError);
    assert.equal(streamFailure(undefined, callerError), callerError);
  });
});
