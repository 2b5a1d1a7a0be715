/**
 * Rate-limit headers from a quota decision: the seed's `X-RateLimit-{Limit,Remaining,Reset}`
 * (requests; reset in unix seconds) and the same three suffixed `-Tokens`, plus OpenAI's own
 * `x-ratelimit-*-{requests,tokens}` (reset as a duration) that SDKs and dashboards read.
 * Unlimited dimensions (self-hosted tier) send no numeric headers, only
 * `X-RateLimit-Policy: unlimited`, so no client computes with a made-up number.
 */
import type { LimitStatus } from '../../../gen/xerotier/quota/v1/quota_service.js';

export function rateLimitHeaders(
  requests: LimitStatus | undefined,
  tokens: LimitStatus | undefined,
  now: number = Date.now(),
): Record<string, string> {
  const headers: Record<string, string> = {};
  const add = (s: LimitStatus | undefined, suffix: string, openaiSuffix: string): void => {
    if (!s || s.unlimited) return;
    const resetMs = s.resetTime ? s.resetTime.getTime() : now;
    headers[`x-ratelimit-limit${suffix}`] = String(s.limit);
    headers[`x-ratelimit-remaining${suffix}`] = String(Math.max(0, s.remaining));
    headers[`x-ratelimit-reset${suffix}`] = String(Math.ceil(resetMs / 1000));
    headers[`x-ratelimit-limit-${openaiSuffix}`] = String(s.limit);
    headers[`x-ratelimit-remaining-${openaiSuffix}`] = String(Math.max(0, s.remaining));
    headers[`x-ratelimit-reset-${openaiSuffix}`] = duration(Math.max(0, resetMs - now));
  };
  add(requests, '', 'requests');
  add(tokens, '-tokens', 'tokens');
  if (requests?.unlimited && tokens?.unlimited) headers['x-ratelimit-policy'] = 'unlimited';
  return headers;
}

/** OpenAI's duration format: `6m0s`, `1s`, `250ms`. */
function duration(ms: number): string {
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  const totalSeconds = Math.ceil(ms / 1000);
  const m = Math.floor(totalSeconds / 60);
  const s = totalSeconds % 60;
  return m > 0 ? `${m}m${s}s` : `${s}s`;
}
