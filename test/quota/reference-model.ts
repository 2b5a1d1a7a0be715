/**
 * The executable specification of the quota algorithm (services/quota/src/stores/store.ts):
 * deliberately naive — it never prunes, recomputes everything from the full history on every
 * call, and finds retry times by trying every instant at which something leaves the window.
 * The memory and Redis stores must agree with it on every output, for every sequence.
 */
import {
  dimension,
  type LimitPolicy,
  type ReserveOutcome,
  type SettleOutcome,
  type WindowSnapshot,
} from '../../services/quota/src/stores/store.js';

interface Rec {
  id: string;
  ts: number;
  tokens: number;
  settled: boolean;
}

export class ReferenceModel {
  private readonly history = new Map<string, Rec[]>();

  private live(scope: string, policy: LimitPolicy, at: number): Rec[] {
    return (this.history.get(scope) ?? []).filter((r) => r.ts > at - policy.windowMs);
  }

  snapshot(scope: string, policy: LimitPolicy, now: number): WindowSnapshot {
    const unlimited = policy.requests === null && policy.tokens === null;
    const live = unlimited ? [] : this.live(scope, policy, now);
    const sum = live.reduce((s, r) => s + r.tokens, 0);
    const holding = live.filter((r) => r.tokens > 0);
    return {
      requests: dimension(
        policy.requests,
        live.length,
        live.length > 0 ? Math.max(...live.map((r) => r.ts)) + policy.windowMs : now,
      ),
      tokens: dimension(
        policy.tokens,
        sum,
        sum > 0 ? Math.max(...holding.map((r) => r.ts)) + policy.windowMs : now,
      ),
    };
  }

  reserve(scope: string, id: string, est: number, policy: LimitPolicy, now: number): ReserveOutcome {
    const allow = { allowed: true, duplicate: false, deniedBy: null, retryAfterMs: 0, retryable: true } as const;
    if (policy.requests === null && policy.tokens === null) return { ...allow, ...this.snapshot(scope, policy, now) };
    const live = this.live(scope, policy, now);
    if (live.some((r) => r.id === id)) return { ...allow, duplicate: true, ...this.snapshot(scope, policy, now) };
    const never = (by: 'requests' | 'tokens'): ReserveOutcome => ({
      ...allow,
      allowed: false,
      deniedBy: by,
      retryable: false,
      ...this.snapshot(scope, policy, now),
    });
    if (policy.tokens !== null && est > policy.tokens) return never('tokens');
    if (policy.requests !== null && policy.requests < 1) return never('requests');

    const fitsRequests = (at: number): boolean =>
      policy.requests === null || this.live(scope, policy, at).length + 1 <= policy.requests;
    const fitsTokens = (at: number): boolean =>
      policy.tokens === null || this.live(scope, policy, at).reduce((s, r) => s + r.tokens, 0) + est <= policy.tokens;

    if (fitsRequests(now) && fitsTokens(now)) {
      const list = this.history.get(scope) ?? [];
      list.push({ id, ts: now, tokens: est, settled: false });
      this.history.set(scope, list);
      return { ...allow, ...this.snapshot(scope, policy, now) };
    }
    // Earliest instant each condition holds, assuming nothing else arrives.
    const instants = [...new Set(live.map((r) => r.ts + policy.windowMs))].sort((a, b) => a - b);
    const earliest = (fits: (at: number) => boolean): number => {
      if (fits(now)) return 0;
      const t = instants.find((at) => fits(at));
      if (t === undefined) throw new Error('model: never fits');
      return t - now;
    };
    const requestsRetry = earliest(fitsRequests);
    const tokensRetry = earliest(fitsTokens);
    const requestsDeny = !fitsRequests(now);
    const tokensDeny = !fitsTokens(now);
    return {
      ...allow,
      allowed: false,
      deniedBy: requestsDeny && (!tokensDeny || requestsRetry >= tokensRetry) ? 'requests' : 'tokens',
      retryAfterMs: Math.max(requestsRetry, tokensRetry),
      ...this.snapshot(scope, policy, now),
    };
  }

  settle(scope: string, id: string, real: number, policy: LimitPolicy, now: number): SettleOutcome {
    const unlimited = policy.requests === null && policy.tokens === null;
    const rec = unlimited ? undefined : this.live(scope, policy, now).find((r) => r.id === id);
    let applied = false;
    if (rec && !rec.settled) {
      rec.tokens = real;
      rec.settled = true;
      applied = true;
    }
    return { applied, tokens: this.snapshot(scope, policy, now).tokens };
  }
}
