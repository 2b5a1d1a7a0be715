/** Per-request state kept in `res.locals` (typed here, set by app.ts middleware). */
import type { Logger } from 'pino';

export interface RequestLocals {
  requestId: string;
  logger: Logger;
  /** Rate-limit headers once the key is known; repeated on error responses. */
  headers?: Record<string, string>;
  /** OpenAI `error.code` of the error response sent (set by the error handler). */
  errorCode?: string;
  /**
   * A liveness/readiness probe: its access line is at debug (a probe every few seconds is noise, and
   * a 503 from /readyz while the fleet connects is an answer about the fleet, not a gateway error).
   */
  probe?: true;
}
