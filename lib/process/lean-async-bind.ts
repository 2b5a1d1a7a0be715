/**
 * A cheaper `AsyncResource.prototype.bind` for a process that opens many HTTP/2 streams.
 *
 * Node's own `bind` (Node 20) gives every bound function a deprecated `asyncResource` accessor
 * pair (DEP0172), built from two fresh `util.deprecate` wrappers, and each wrapper is set up with
 * `Object.setPrototypeOf` on a new function: about 14 µs per call on this project's machines
 * against about 1.3 µs for this one (bench/gateway-hotpath.ts has the per-request comparison). `ClientHttp2Session.request()` binds once per
 * stream, so a gRPC client pays it on every call (the gateway: every Generate call, ~2.7 % of its
 * busy time under load).
 *
 * The replacement keeps what callers can observe: the bound function runs `fn` in the resource's
 * async scope with the caller's `this` (or `thisArg`) and arguments, has `fn`'s `length`, and has
 * an enumerable `asyncResource` accessor that returns (and lets a caller replace) the resource and
 * emits the same DEP0172 deprecation warning, once per process, when used; non-functions are
 * refused by Node's own `bind` with its own error. The accessor functions are shared by every
 * bound function: the resource sits on the function under a private symbol.
 *
 * Installed only where Node's `bind` still adds that accessor (checked on a probe binding), and
 * only once per prototype; the process's composition root calls it (it changes a built-in).
 */
import { AsyncResource } from 'node:async_hooks';

type AnyFunction = (this: unknown, ...args: unknown[]) => unknown;
type Bind = (this: AsyncResource, fn: AnyFunction, thisArg?: unknown) => AnyFunction;

const LEAN = Symbol('lean AsyncResource bind');
const DEP0172 = 'The asyncResource property on bound functions is deprecated';

/**
 * Replaces `bind` on `prototype` (AsyncResource.prototype by default; a subclass's prototype in
 * tests). Returns false when nothing was installed: already installed, or this Node's `bind` no
 * longer adds the deprecated accessor.
 */
export function installLeanAsyncResourceBind(prototype: AsyncResource = AsyncResource.prototype): boolean {
  const original = prototype.bind as Bind & { [LEAN]?: true };
  if (original[LEAN]) return false;
  const probe = original.call(new AsyncResource('LeanBindProbe'), () => undefined);
  const accessor = Object.getOwnPropertyDescriptor(probe, 'asyncResource');
  if (!accessor?.get || !accessor.set) return false;

  const resourceKey = Symbol('asyncResource');
  let warned = false;
  const warn = (): void => {
    if (warned) return;
    warned = true;
    process.emitWarning(DEP0172, 'DeprecationWarning', 'DEP0172');
  };
  const asyncResource: PropertyDescriptor = {
    configurable: true,
    enumerable: true,
    get(this: Record<symbol, unknown>) {
      warn();
      return this[resourceKey];
    },
    set(this: Record<symbol, unknown>, value: unknown) {
      warn();
      this[resourceKey] = value;
    },
  };

  const bind = function (this: AsyncResource, fn: AnyFunction, thisArg?: unknown): AnyFunction {
    if (typeof fn !== 'function') return original.call(this, fn, thisArg);
    const resource = this;
    const bound: AnyFunction =
      thisArg === undefined
        ? function (this: unknown, ...args: unknown[]) {
            return resource.runInAsyncScope(fn, this, ...args);
          }
        : (resource.runInAsyncScope.bind(resource, fn, thisArg) as AnyFunction);
    // Both forms have length 0 (a rest parameter; runInAsyncScope's two parameters bound): only
    // a function with parameters needs its own (http2's bound requestOnConnect has none).
    if (fn.length !== 0) Object.defineProperty(bound, 'length', { configurable: true, enumerable: false, writable: false, value: fn.length });
    Object.defineProperty(bound, resourceKey, { configurable: true, enumerable: false, writable: true, value: resource });
    Object.defineProperty(bound, 'asyncResource', asyncResource);
    return bound;
  } as Bind & { [LEAN]?: true };
  bind[LEAN] = true;
  Object.defineProperty(prototype, 'bind', { configurable: true, enumerable: false, writable: true, value: bind });
  return true;
}
