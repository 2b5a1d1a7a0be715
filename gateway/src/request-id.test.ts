import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRequestIds } from './request-id.js';

describe('request ids', () => {
  it('are req_ and 24 hex digits, and never repeat across refills of the random block', () => {
    const next = createRequestIds();
    const seen = new Set<string>();
    for (let i = 0; i < 2_000; i++) {
      const id = next();
      assert.match(id, /^req_[0-9a-f]{24}$/);
      seen.add(id);
    }
    assert.equal(seen.size, 2_000);
  });

  it('differ between generators', () => {
    assert.notEqual(createRequestIds()(), createRequestIds()());
  });
});
