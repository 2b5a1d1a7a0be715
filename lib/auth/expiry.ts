/**
 * Bounds of an API key's expiry. The largest expiry is the largest protobuf Timestamp
 * (9999-12-31T23:59:59Z): every such time is also a valid JavaScript Date and fits the auth
 * database's bigint epoch-millisecond columns. Anything beyond, an unrepresentable Date or a
 * time not in the future is refused as INVALID_ARGUMENT naming `expires_at`.
 */
import { invalidRequest } from '../errors/app-error.js';

/** 9999-12-31T23:59:59Z in unix seconds. */
export const MAX_EXPIRES_AT_SECONDS = 253_402_300_799;
export const MAX_EXPIRES_AT_MS = MAX_EXPIRES_AT_SECONDS * 1000;

/** Checks an expiry in epoch milliseconds against `now`; returns it unchanged when valid. */
export function checkExpiresAt(expiresAtMs: number, now: number): number {
  if (!Number.isFinite(expiresAtMs) || expiresAtMs > MAX_EXPIRES_AT_MS) {
    throw invalidRequest(`expires_at must be a unix time no later than ${MAX_EXPIRES_AT_SECONDS} (9999-12-31T23:59:59Z).`, {
      param: 'expires_at',
    });
  }
  if (expiresAtMs <= now) throw invalidRequest('expires_at must be in the future.', { param: 'expires_at' });
  return expiresAtMs;
}

/**
 * An HTTP `expires_at` (unix seconds) as the Date to send in a CreateApiKey request. Checked
 * before the Date is built: beyond the bound, `new Date` would be invalid and could not be
 * encoded as a Timestamp at all.
 */
export function expireTimeFromUnixSeconds(seconds: number, now: number = Date.now()): Date {
  return new Date(checkExpiresAt(seconds * 1000, now));
}
