/** The breaker state machine (closed → open → half-open → closed) with real opossum and short windows. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { AppError } from '../../lib/errors/app-error.js';
import { createBreaker } from './breaker.js';

const logger = pino({ level: 'silent' });
const fail = () => Promise.reject(new AppError('internal', 'boom'));
const ok = () => Promise.resolve('ok');

function breaker(states: string[] = []) {
  return createBreaker(
    'test',
    { errorThresholdPercentage: 50, volumeThreshold: 5, resetTimeoutMs: 200, rollingWindowMs: 10_000 },
    logger,
    (_n, s) => states.push(s),
  );
}

describe('breaker', () => {
  it('stays closed below the volume threshold, opens past it', async () => {
    const b = breaker();
    for (let i = 0; i < 4; i++) await b.run(fail).catch(() => undefined);
    assert.equal(b.state(), 'closed', '4 failures < volume 5');
    await b.run(fail).catch(() => undefined);
    assert.equal(b.state(), 'open');
    b.shutdown();
  });

  it('never counts caller errors or capacity rejections', async () => {
    const b = breaker();
    for (let i = 0; i < 20; i++) {
      await b.run(() => Promise.reject(new AppError('invalid_request', 'bad'))).catch(() => undefined);
      await b.run(() => Promise.reject(new AppError('unavailable', 'full', { code: 'capacity_exceeded' }))).catch(() => undefined);
      await b.run(() => Promise.reject(new AppError('cancelled', 'gone'))).catch(() => undefined);
    }
    assert.equal(b.state(), 'closed');
    b.shutdown();
  });

  it('stays closed while errors are under the threshold percentage', async () => {
    const b = breaker();
    for (let i = 0; i < 30; i++) await b.run(i % 3 === 0 ? fail : ok).catch(() => undefined);
    assert.equal(b.state(), 'closed', '33% errors < 50%');
    b.shutdown();
  });

  it('answers fast with a 503-kind error and a true Retry-After while open', async () => {
    const b = breaker();
    for (let i = 0; i < 5; i++) await b.run(fail).catch(() => undefined);
    const started = performance.now();
    await assert.rejects(b.run(ok), (err: unknown) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.kind, 'unavailable');
      assert.equal(err.code, 'circuit_open');
      assert.equal(err.retryAfterSeconds, 1, 'reset in 200 ms → 1 s');
      return true;
    });
    assert.ok(performance.now() - started < 50);
    b.shutdown();
  });

  it('half-opens after the reset timeout, admits one probe, closes on success', async () => {
    const states: string[] = [];
    const b = breaker(states);
    for (let i = 0; i < 5; i++) await b.run(fail).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 260));
    assert.equal(b.state(), 'half-open');
    let release!: () => void;
    const probe = b.run(() => new Promise<string>((r) => (release = () => r('ok'))));
    await assert.rejects(b.run(ok), /temporarily unavailable/, 'a second call while the probe runs is refused');
    release();
    assert.equal(await probe, 'ok');
    assert.equal(b.state(), 'closed');
    assert.deepEqual(states, ['open', 'half-open', 'closed']);
    b.shutdown();
  });

  it('re-opens when the probe fails and recovers later (never stuck open)', async () => {
    const b = breaker();
    for (let i = 0; i < 5; i++) await b.run(fail).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 260));
    await b.run(fail).catch(() => undefined);
    assert.equal(b.state(), 'open');
    await new Promise((r) => setTimeout(r, 260));
    assert.equal(await b.run(ok), 'ok');
    assert.equal(b.state(), 'closed');
    b.shutdown();
  });

  it('recordFailure counts failures seen after the guarded phase', async () => {
    const b = breaker();
    for (let i = 0; i < 6; i++) b.recordFailure(new AppError('internal', 'stream broke'));
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(b.state(), 'open');
    b.shutdown();
  });
});
