import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RegisteredWorker } from '../../../../gen/xerotier/registry/v1/registry_service.js';
import { createLeaseTable, type LeaseEvent } from './lease-table.js';

const worker = (workerId: string, address: string): RegisteredWorker => RegisteredWorker.fromPartial({ workerId, address, pool: 'cpu', capacity: 4 });

function table() {
  let t = 0;
  const leases = createLeaseTable({ ttlMs: 1000, now: () => t });
  const events: string[] = [];
  leases.subscribe((e: LeaseEvent) => events.push(e.kind === 'upserted' ? `+${e.worker.workerId}` : `-${e.workerId}:${e.reason}`));
  return { leases, events, advance: (ms: number) => void (t += ms) };
}

describe('lease table', () => {
  it('a renewal that changes nothing is not an event; expiry and deregistration are', () => {
    const { leases, events, advance } = table();
    leases.upsert(worker('a', '10.0.0.1:1'));
    leases.upsert(worker('a', '10.0.0.1:1'));
    leases.upsert(worker('b', '10.0.0.2:1'));
    leases.remove('b');
    advance(1000);
    leases.sweep();
    assert.deepEqual(events, ['+a', '+b', '-b:deregistered', '-a:expired']);
    assert.deepEqual(leases.list(), []);
  });

  it('a worker registering at an address another lease holds supersedes it, before it is announced', () => {
    const { leases, events, advance } = table();
    leases.upsert(worker('old', '10.0.0.1:1'));
    advance(500);
    leases.upsert(worker('new', '10.0.0.1:1'));
    assert.deepEqual(events, ['+old', '-old:superseded', '+new']);
    // The old lease's expiry time passes: nothing more is removed, the new worker stays.
    advance(600);
    leases.sweep();
    assert.deepEqual(events, ['+old', '-old:superseded', '+new']);
    assert.deepEqual(leases.list().map((w) => w.workerId), ['new']);
  });
});
