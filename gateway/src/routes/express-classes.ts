/**
 * The HTTP server's request and response classes, born with express's prototypes.
 *
 * express gives a request its helpers (`res.json`, `req.get`, ...) by `Object.setPrototypeOf` on
 * the request and response objects Node made, to `app.request` / `app.response` (and
 * routes/direct-dispatch.ts does the same). A prototype swapped on a fresh object costs far more
 * than the call: V8 then keeps the request's objects through young-generation collections into the
 * old generation. Measured at 200 requests/s with `--trace-gc`: a bare node:http server that swaps
 * the two prototypes promoted ~2 MB a second (scavenges 1–5 ms instead of 0.3 ms); the gateway
 * promoted ~3 MB per scavenge, with scavenges of 7–30 ms, the longest pauses on its path.
 *
 * Here Node builds every request and response from subclasses of its own classes whose prototype
 * chains hold express's (`http.createServer({ IncomingMessage, ServerResponse })`), and the app's
 * `request` / `response` become those subclasses' prototypes, so express's swap (and the direct
 * dispatch's) sets the prototype an object already has, which V8 skips.
 */
import { IncomingMessage, ServerResponse } from 'node:http';

export interface ExpressHttpClasses {
  IncomingMessage: typeof IncomingMessage;
  ServerResponse: typeof ServerResponse;
}

/**
 * Classes whose instances inherit the app's `request` / `response`; the app's two prototypes are
 * replaced by those classes' prototypes (which inherit the previous ones, `app` included).
 */
export function expressHttpClasses(app: { request: object; response: object }): ExpressHttpClasses {
  class ExpressRequest extends IncomingMessage {}
  Object.setPrototypeOf(ExpressRequest.prototype, app.request);
  class ExpressResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {}
  Object.setPrototypeOf(ExpressResponse.prototype, app.response);
  app.request = ExpressRequest.prototype;
  app.response = ExpressResponse.prototype;
  return { IncomingMessage: ExpressRequest, ServerResponse: ExpressResponse };
}
