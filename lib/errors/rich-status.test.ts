/** The google.rpc.Status codec: exact bytes for a small status, and every detail type read back. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeRichStatus, encodeRichStatus } from './rich-status.js';

describe('rich status codec', () => {
  it('encodes Status fields with the numbers of google/rpc/status.proto', () => {
    // code = 8 (field 1, varint), message = "x" (field 2, length-delimited), no details.
    assert.deepEqual([...encodeRichStatus({ code: 8, message: 'x' })], [0x08, 0x08, 0x12, 0x01, 0x78]);
  });

  it('reads back ErrorInfo, RetryInfo and QuotaFailure', () => {
    const status = {
      code: 8,
      message: 'Rate limit reached',
      errorInfo: { reason: 'rate_limit_exceeded', domain: 'gateway.xerotier', metadata: { type: 'rate_limit_error', http_status: '429' } },
      retryDelayMs: 2500,
      quotaFailure: [{ subject: 'api_key:key_1', description: 'requests per minute' }],
    };
    assert.deepEqual(decodeRichStatus(encodeRichStatus(status)), status);
  });
});
