import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAppError } from '../errors/app-error.js';
import { MAX_EXPIRES_AT_SECONDS, checkExpiresAt, expireTimeFromUnixSeconds } from './expiry.js';

const NOW = Date.UTC(2030, 0, 1);

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    assert.ok(isAppError(err), String(err));
    assert.equal(err.kind, 'invalid_request');
    assert.equal(err.param, 'expires_at');
    return err.message;
  }
  assert.fail('accepted');
}

describe('key expiry bounds', () => {
  it('accepts the future up to 9999-12-31T23:59:59Z and refuses the rest, naming expires_at', () => {
    assert.equal(expireTimeFromUnixSeconds(MAX_EXPIRES_AT_SECONDS, NOW).toISOString(), '9999-12-31T23:59:59.000Z');
    assert.equal(checkExpiresAt(NOW + 1, NOW), NOW + 1);
    for (const seconds of [1e15, MAX_EXPIRES_AT_SECONDS + 1, Number.MAX_VALUE, Infinity, NaN]) {
      assert.match(refusal(() => expireTimeFromUnixSeconds(seconds, NOW)), /no later than 253402300799/, String(seconds));
    }
    for (const seconds of [NOW / 1000, NOW / 1000 - 1, 0, -1]) {
      assert.equal(refusal(() => expireTimeFromUnixSeconds(seconds, NOW)), 'expires_at must be in the future.');
    }
  });
});
