import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  CHECKSUM_CHARS,
  RANDOM_CHARS,
  SECRET_CHARS,
  displayPrefix,
  generateApiKey,
  hashApiKey,
  hashMatches,
  parseApiKey,
} from './api-key.js';

const slugArb = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,39}$/);

describe('api key format', () => {
  it('mints keys of the documented shape that parse back', () => {
    fc.assert(
      fc.property(slugArb, (slug) => {
        const { full, prefix } = generateApiKey(slug);
        const secret = full.slice(`xero_${slug}_`.length);
        assert.equal(secret.length, SECRET_CHARS);
        assert.match(secret, /^[0-9A-Za-z]+$/);
        assert.equal(prefix, displayPrefix(slug, secret));
        assert.equal(prefix, `xero_${slug}_${secret.slice(0, 6)}`);
        assert.deepEqual(parseApiKey(full), { projectSlug: slug, full });
      }),
      { numRuns: 300 },
    );
  });

  it('draws 256 random bits per key (no repeats)', () => {
    const seen = new Set(Array.from({ length: 2000 }, () => generateApiKey('p').full));
    assert.equal(seen.size, 2000);
  });

  it('rejects any single-character change of a valid key (checksum, charset, shape)', () => {
    const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_ é';
    fc.assert(
      fc.property(slugArb, fc.nat(), fc.nat(), (slug, posSeed, charSeed) => {
        const { full } = generateApiKey(slug);
        const pos = posSeed % full.length;
        const replacement = alphabet[charSeed % alphabet.length] ?? 'x';
        fc.pre(full[pos] !== replacement);
        const mutated = full.slice(0, pos) + replacement + full.slice(pos + 1);
        // Changing the slug part may yield another valid-looking slug; the checksum covers it.
        assert.equal(parseApiKey(mutated), undefined, `accepted ${pos}:${replacement}`);
      }),
      { numRuns: 3000 },
    );
  });

  it('rejects truncation, extension, wrong prefix and non-strings', () => {
    const { full } = generateApiKey('demo');
    for (const bad of [
      full.slice(0, -1),
      `${full}a`,
      full.replace(/^xero_/, 'xera_'),
      full.replace(/^xero_/, 'XERO_'),
      full.replace('_demo_', '_DEMO_'),
      full.replace('_demo_', '_de_mo_'),
      `xero__${full.slice('xero_demo_'.length)}`,
      ` ${full}`,
      `${full}\n`,
      '',
      'xero_demo_',
      'sk-' + 'a'.repeat(48),
      'xero_' + 'a'.repeat(41) + '_' + 'A'.repeat(SECRET_CHARS),
      undefined,
      null,
      42,
    ]) {
      assert.equal(parseApiKey(bad), undefined, JSON.stringify(bad));
    }
    assert.equal(RANDOM_CHARS + CHECKSUM_CHARS, SECRET_CHARS);
  });

  it('hashes with the pepper and compares in constant time', () => {
    const { full } = generateApiKey('demo');
    const a = hashApiKey('pepper-one-0123456789', full);
    const b = hashApiKey('pepper-two-0123456789', full);
    assert.equal(a.length, 32);
    assert.notDeepEqual(a, b);
    assert.equal(hashMatches(a.toString('hex'), a), true);
    assert.equal(hashMatches(b.toString('hex'), a), false);
    assert.equal(hashMatches('abcd', a), false);
  });
});
