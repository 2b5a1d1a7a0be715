/** Whether a stored key works at a given time, and until when it can work at most. */
import type { ApiKeyRow } from './stores/store.js';

/** Why the key does not work at `now` (a message for its holder), or undefined when it does. */
export function unusableReason(key: ApiKeyRow, now: number): string | undefined {
  if (key.revokedAt !== null) return 'This API key has been revoked.';
  if (key.expiresAt !== null && key.expiresAt <= now) return 'This API key has expired.';
  if (key.graceExpiresAt !== null && key.graceExpiresAt <= now) {
    return 'This API key was rotated and its grace period has ended.';
  }
  return undefined;
}

/** When the key stops working at the latest (expiry or end of its rotation grace); null = never. */
export function keyEndsAt(key: Pick<ApiKeyRow, 'expiresAt' | 'graceExpiresAt'>): number | null {
  const ends = [key.expiresAt, key.graceExpiresAt].filter((t): t is number => t !== null);
  return ends.length === 0 ? null : Math.min(...ends);
}
