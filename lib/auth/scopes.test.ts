import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Scope } from '../../gen/xerotier/auth/v1/auth_service.js';
import { SCOPE_NAMES, canonicalScopes, isScopeName, scopeName, scopeValue } from './scopes.js';

describe('scope names', () => {
  it('maps every proto scope but UNSPECIFIED to a name and back', () => {
    const granted = Object.values(Scope).filter((v): v is Scope => typeof v === 'number' && v !== Scope.SCOPE_UNSPECIFIED && v !== Scope.UNRECOGNIZED);
    assert.deepEqual(granted.map(scopeName), ['inference', 'management']);
    for (const name of SCOPE_NAMES) assert.equal(scopeName(scopeValue(name)), name);
    assert.equal(scopeName(Scope.SCOPE_UNSPECIFIED), undefined);
    assert.equal(scopeName(Scope.UNRECOGNIZED), undefined);
  });

  it('recognises names exactly and puts them in canonical order without duplicates', () => {
    assert.ok(isScopeName('management'));
    for (const s of ['Management', 'admin', '', 'inference ']) assert.equal(isScopeName(s), false, s);
    assert.deepEqual(canonicalScopes(['management', 'inference', 'management']), ['inference', 'management']);
  });
});
