import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAppError } from '../../../lib/errors/app-error.js';
import { eligibleWorkers, isEligible, type Candidate, type RouteRequest } from './eligibility.js';

const worker = (pool: string, models: string[] | undefined, owner?: string): Candidate & { name: string } => ({
  name: `${pool}:${models?.join('+') ?? '?'}:${owner ?? 'shared'}`,
  pool,
  models: models,
  owner,
});
const request = (over: Partial<RouteRequest> = {}): RouteRequest => ({ pools: ['cpu'], model: 'a', project: 'prj_1', ...over });
const never = (): boolean => false;
const failsWith = (fn: () => unknown, status: string, code: string) =>
  assert.throws(fn, (err: unknown) => isAppError(err) && err.kind === status && err.code === code);

describe('eligibility: pool, model, owner', () => {
  it('keeps only workers of the tier pools that serve the endpoint model', () => {
    const ws = [worker('cpu', ['a']), worker('cpu', ['b']), worker('gpu-nvidia', ['a']), worker('cpu', ['b', 'a'])];
    assert.deepEqual(eligibleWorkers(ws, request(), never).map((w) => w.name), ['cpu:a:shared', 'cpu:b+a:shared']);
    assert.deepEqual(
      eligibleWorkers(ws, request({ pools: ['cpu', 'gpu-nvidia'], model: 'a' }), never).map((w) => w.name),
      ['cpu:a:shared', 'gpu-nvidia:a:shared', 'cpu:b+a:shared'],
    );
  });

  it('an owned worker serves its own project only; a shared one everybody', () => {
    const owned = worker('cpu', ['a'], 'prj_1');
    assert.equal(isEligible(owned, request({ project: 'prj_1' })), true);
    assert.equal(isEligible(owned, request({ project: 'prj_2' })), false);
    assert.equal(isEligible(worker('cpu', ['a'], ''), request({ project: 'prj_2' })), true);
    assert.equal(isEligible(worker('cpu', ['a']), request({ project: '' })), true);
  });

  it('a worker whose models are not known yet is not eligible', () => {
    assert.equal(isEligible(worker('cpu', undefined), request()), false);
  });

  it('a model nobody serves or served is 404 model_not_found', () => {
    failsWith(() => eligibleWorkers([worker('cpu', ['b'])], request(), never), 'not_found', 'model_not_found');
    failsWith(() => eligibleWorkers([], request(), never), 'not_found', 'model_not_found');
  });

  it('another project’s worker does not make a model known (no 503 that would reveal it)', () => {
    failsWith(() => eligibleWorkers([worker('cpu', ['a'], 'prj_2')], request(), never), 'not_found', 'model_not_found');
  });

  it('a model seen before (for this project or shared) stays known after its workers left', () => {
    const seenForProject = (model: string, project: string) => model === 'a' && project === 'prj_1';
    failsWith(() => eligibleWorkers([], request(), seenForProject), 'unavailable', 'model_unavailable');
    failsWith(() => eligibleWorkers([], request({ project: 'prj_2' }), seenForProject), 'not_found', 'model_not_found');
  });

  it('a known model with no eligible worker now is 503 model_unavailable with a Retry-After', () => {
    // Served in another pool.
    failsWith(() => eligibleWorkers([worker('gpu-nvidia', ['a'])], request(), never), 'unavailable', 'model_unavailable');
    // Served before (the worker left).
    failsWith(() => eligibleWorkers([worker('cpu', ['b'])], request(), (model: string) => model === 'a'), 'unavailable', 'model_unavailable');
    // A worker of the pool has not said what it serves yet.
    failsWith(() => eligibleWorkers([worker('cpu', undefined)], request(), never), 'unavailable', 'model_unavailable');
    try {
      eligibleWorkers([worker('gpu-nvidia', ['a'])], request(), never);
    } catch (err) {
      assert.ok(isAppError(err) && (err.retryAfterSeconds ?? 0) > 0);
    }
  });
});
