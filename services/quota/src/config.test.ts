import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadQuotaConfig } from './config.js';

describe('loadQuotaConfig', () => {
  it('has the documented defaults (in-memory store, fail-open-local, divisor 1)', () => {
    assert.deepEqual(loadQuotaConfig({}), {
      QUOTA_HOST: '127.0.0.1',
      QUOTA_PORT: 50052,
      QUOTA_REDIS_PREFIX: 'xq:',
      QUOTA_REDIS_TIMEOUT_MS: 50,
      QUOTA_FAILURE_POLICY: 'fail-open-local',
      QUOTA_LOCAL_FALLBACK_DIVISOR: 1,
      QUOTA_LEASE_HEADROOM: 0.25,
      QUOTA_LEASE_MIN_LIMIT: 10_000,
      LOG_LEVEL: 'info',
    });
  });

  it('parses every variable', () => {
    const c = loadQuotaConfig({
      QUOTA_HOST: '0.0.0.0',
      QUOTA_PORT: '0',
      QUOTA_REDIS_URL: 'redis://redis:6379/0',
      QUOTA_REDIS_PREFIX: 'p:',
      QUOTA_REDIS_TIMEOUT_MS: '80',
      QUOTA_FAILURE_POLICY: 'fail-closed',
      QUOTA_LOCAL_FALLBACK_DIVISOR: '3',
      TIERS_FILE: '/etc/tiers.json',
      SERVICE_TOKEN: 's3cret',
      LOG_LEVEL: 'debug',
    });
    assert.equal(c.QUOTA_PORT, 0);
    assert.equal(c.QUOTA_REDIS_URL, 'redis://redis:6379/0');
    assert.equal(c.QUOTA_REDIS_TIMEOUT_MS, 80);
    assert.equal(c.QUOTA_FAILURE_POLICY, 'fail-closed');
    assert.equal(c.QUOTA_LOCAL_FALLBACK_DIVISOR, 3);
    assert.equal(c.TIERS_FILE, '/etc/tiers.json');
  });

  it('treats empty strings as unset', () => {
    const c = loadQuotaConfig({ QUOTA_REDIS_URL: '', TIERS_FILE: '', SERVICE_TOKEN: '' });
    assert.equal(c.QUOTA_REDIS_URL, undefined);
    assert.equal(c.TIERS_FILE, undefined);
    assert.equal(c.SERVICE_TOKEN, undefined);
  });

  it('rejects bad values with one readable error', () => {
    assert.throws(
      () => loadQuotaConfig({ QUOTA_FAILURE_POLICY: 'fail-open', QUOTA_LOCAL_FALLBACK_DIVISOR: '0', QUOTA_REDIS_URL: 'nope' }),
      /QUOTA_REDIS_URL.*QUOTA_FAILURE_POLICY.*QUOTA_LOCAL_FALLBACK_DIVISOR/,
    );
  });
});
