import assert from 'node:assert/strict';
import { AsyncLocalStorage, AsyncResource, executionAsyncId } from 'node:async_hooks';
import { describe, it } from 'node:test';
import { installLeanAsyncResourceBind } from './lean-async-bind.js';

/** A subclass, so that the test process's own AsyncResource.prototype stays Node's. */
class Resource extends AsyncResource {}

describe('installLeanAsyncResourceBind', () => {
  it('installs once on a prototype whose bind adds the deprecated accessor', () => {
    class Other extends AsyncResource {}
    assert.equal(installLeanAsyncResourceBind(Other.prototype), true);
    assert.equal(installLeanAsyncResourceBind(Other.prototype), false, 'second install is a no-op');
    assert.notEqual(Other.prototype.bind, AsyncResource.prototype.bind);
  });

  it('runs the function in the resource scope with the caller this, thisArg and arguments', () => {
    installLeanAsyncResourceBind(Resource.prototype);
    const storage = new AsyncLocalStorage<string>();
    const resource = storage.run('at creation', () => new Resource('Test'));
    const seen: unknown[] = [];
    function fn(this: unknown, a: unknown, b: unknown): string {
      seen.push(this, a, b, executionAsyncId(), storage.getStore());
      return 'result';
    }
    const bound = resource.bind(fn);
    assert.equal(bound.length, 2);
    const self = { name: 'caller' };
    assert.equal(storage.run('at call', () => bound.call(self, 1, 2)), 'result');
    assert.deepEqual(seen, [self, 1, 2, resource.asyncId(), 'at creation']);

    seen.length = 0;
    // thisArg is Node's second parameter (not in every @types/node release).
    const withThis = (resource.bind as (f: typeof fn, thisArg: unknown) => typeof fn)(fn, 'fixed');
    assert.equal(withThis.length, 2);
    withThis.call(self, 3, 4);
    assert.deepEqual(seen.slice(0, 4), ['fixed', 3, 4, resource.asyncId()]);

    const staticBound = Resource.bind(fn);
    assert.equal(typeof staticBound, 'function');
  });

  it('keeps the asyncResource accessor, enumerable, warning DEP0172 once', async () => {
    installLeanAsyncResourceBind(Resource.prototype);
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    try {
      const resource = new Resource('Test');
      const bound = resource.bind(() => 1) as (() => number) & { asyncResource: unknown };
      assert.equal(bound.length, 0);
      assert.ok(Object.keys(bound).includes('asyncResource'));
      assert.equal(bound.asyncResource, resource);
      const other = new Resource('Other');
      bound.asyncResource = other;
      assert.equal(bound.asyncResource, other);
      assert.equal(bound(), 1);
      await new Promise((resolve) => setImmediate(resolve));
      const ours = warnings.filter((w) => (w as Error & { code?: string }).code === 'DEP0172');
      assert.equal(ours.length, 1);
      assert.equal(ours[0]?.name, 'DeprecationWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('refuses a non-function as Node does', () => {
    installLeanAsyncResourceBind(Resource.prototype);
    const resource = new Resource('Test');
    assert.throws(() => resource.bind(42 as unknown as () => void), { code: 'ERR_INVALID_ARG_TYPE' });
  });

  it('an HTTP/2 request still completes with the lean bind on AsyncResource itself (child process)', async () => {
    // http2 binds through AsyncResource.prototype: check a real stream end to end in a child, so
    // that this test process keeps Node's own bind.
    const { execFileSync } = await import('node:child_process');
    const script = `
      import http2 from 'node:http2';
      import { installLeanAsyncResourceBind } from ${JSON.stringify(new URL('./lean-async-bind.ts', import.meta.url).href)};
      if (!installLeanAsyncResourceBind()) throw new Error('not installed');
      const server = http2.createServer((req, res) => res.end('pong'));
      server.listen(0, '127.0.0.1', () => {
        const client = http2.connect('http://127.0.0.1:' + server.address().port);
        const req = client.request({ ':path': '/' });
        let body = '';
        req.setEncoding('utf8');
        req.on('data', (c) => (body += c));
        req.on('end', () => { process.stdout.write(body); client.close(); server.close(); });
      });
    `;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(out, 'pong');
  });
});
