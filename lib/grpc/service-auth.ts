/**
 * Service-to-service trust: a shared token in the `x-service-token` metadata. With a token
 * configured, nothing else on the network can mint principals, reset quotas or spend GPU time.
 * Health checks stay open so orchestrators can probe without the secret.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { ServerError, Status, type CallContext, type ServerMiddlewareCall } from 'nice-grpc';

export const SERVICE_TOKEN_METADATA = 'x-service-token';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

export function serviceTokenMiddleware(token: string | undefined) {
  const expected = token ? digest(token) : undefined;
  return async function* middleware<Req, Res>(call: ServerMiddlewareCall<Req, Res>, context: CallContext) {
    if (expected && !call.method.path.startsWith('/grpc.health.v1.')) {
      const given = context.metadata.get(SERVICE_TOKEN_METADATA);
      if (given === undefined || !timingSafeEqual(digest(given), expected)) {
        throw new ServerError(Status.UNAUTHENTICATED, 'missing or invalid service credential');
      }
    }
    return yield* call.next(call.request, context);
  };
}
