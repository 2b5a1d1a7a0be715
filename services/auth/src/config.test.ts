import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { storeLocation } from './start.js';
import { DEV_KEY_PEPPER, loadAuthConfig } from './config.js';

describe('auth config', () => {
  it('has the documented defaults', () => {
    const c = loadAuthConfig({});
    assert.equal(c.AUTH_HOST, '127.0.0.1');
    assert.equal(c.AUTH_PORT, 50051);
    assert.equal(c.AUTH_DATABASE_URL, undefined);
    assert.equal(c.AUTH_SQLITE_PATH, '.data/auth.sqlite');
    assert.equal(c.AUTH_KEY_PEPPER, DEV_KEY_PEPPER);
    assert.equal(c.AUTH_ROTATION_GRACE_SECONDS, 86_400);
    assert.equal(c.AUTH_SEED_DEMO, true);
    assert.equal(c.AUTH_DEMO_KEY_FILE, '.data/demo-api-key');
    assert.equal(c.SERVICE_TOKEN, undefined);
    assert.deepEqual(storeLocation(c), { dialect: 'sqlite', path: '.data/auth.sqlite' });
  });

  it('treats empty variables as unset and selects PostgreSQL by URL', () => {
    const c = loadAuthConfig({ AUTH_DATABASE_URL: '', AUTH_KEY_PEPPER: '', SERVICE_TOKEN: '', AUTH_SEED_DEMO: 'false' });
    assert.equal(c.AUTH_DATABASE_URL, undefined);
    assert.equal(c.AUTH_KEY_PEPPER, DEV_KEY_PEPPER);
    assert.equal(c.SERVICE_TOKEN, undefined);
    assert.equal(c.AUTH_SEED_DEMO, false);
    const p = loadAuthConfig({ AUTH_DATABASE_URL: 'postgres://u@db:5432/auth', AUTH_DATABASE_SCHEMA: 'tenant_auth' });
    assert.deepEqual(storeLocation(p), { dialect: 'postgres', url: 'postgres://u@db:5432/auth', schema: 'tenant_auth' });
  });

  it('rejects bad values with one readable error', () => {
    for (const env of [
      { AUTH_DATABASE_URL: 'mysql://db/auth' },
      { AUTH_KEY_PEPPER: 'short' },
      { AUTH_ROTATION_GRACE_SECONDS: '0' },
      { AUTH_PORT: '70000' },
      { AUTH_DATABASE_SCHEMA: 'Robert"); drop' },
      { AUTH_SEED_DEMO: 'maybe' },
    ]) {
      assert.throws(() => loadAuthConfig(env), /invalid configuration: AUTH_/, JSON.stringify(env));
    }
  });
});
