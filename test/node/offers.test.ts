/**
 * Offer parsing (src/node/offers.ts, docs/protocol.md §5.2): integer fields must be read exactly.
 */
import { describe, expect, it } from 'vitest';
import { parseOffer } from '../../src/node/offers.js';

describe('parseOffer', () => {
  it('reads an offer of the largest exact integers', () => {
    expect(parseOffer('sw0absoffer 9007199254740991 0 1 0 0')).toMatchObject({
      oid: 9007199254740991,
    });
  });

  it('refuses an integer field above Number.MAX_SAFE_INTEGER, which Number() would round', () => {
    // Rounded, this oid became 9007199254740992, another offer's id.
    expect(parseOffer('sw0absoffer 9007199254740993 0 1 0 0')).toBeUndefined();
    // Rounded, minsize > maxsize as written passed the check.
    expect(parseOffer('reloffer 0 9007199254740993 9007199254740992 0 0.1')).toBeUndefined();
  });
});
