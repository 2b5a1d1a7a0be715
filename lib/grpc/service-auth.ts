/**
 * Service-to-service trust: a shared token in the `x-service-token` metadata. With a token
 * configured, nothing else on the network can mint principals, reset quotas or spend GPU time.
 * Health checks stay open so orchestrators can probe without the secret.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { ServerError, Status, type CallContext } from 'nice-grpc';

export const SERVICE_TOKEN_METADATA = 'x-service-token';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** The check alone (no middleware layer): throws UNAUTHENTICATED when the credential is wrong. */
export function serviceTokenCheck(token: string | undefined): (path: string, metadata: CallContext['metadata']) => void {
  const expected = token ? digest(token) : undefined;
  return (path, metadata) => {
    if (expected && !path.startsWith('/grpc.health.v1.')) {
      const given = metadata.get(SERVICE_TOKEN_METADATA);
      if (given === undefined || !timingSafeEqual(digest(given), expected)) {
        throw new ServerError(Status.UNAUTHENTICATED, 'missing or invalid service credential');
      }
    }
  };
}
