import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hasCode } from '../../src/errors.js';
import { decodeEnvelope } from '../../src/wire/envelope.js';
import {
  decodePeerlist,
  encodePeerlist,
  encodePeerlistEntry,
  type PeerlistEntry,
} from '../../src/wire/peerlist.js';
import { vectors } from './fixtures.js';

const A = `${'a'.repeat(56)}.onion:5222`;
const B = `${'b'.repeat(56)}.onion:5222`;
const MAKER = 'J58Yv3z2XSPErNfe';
const DIR = 'J5Dq8pjVxJoXKjcU';

describe('encoding (§3.1, §11.4)', () => {
  it('reproduces the join and leave vectors', () => {
    expect(
      encodePeerlist([
        { nick: MAKER, location: A, disconnected: false },
        { nick: DIR, location: B, disconnected: false },
      ]),
    ).toBe(decodeEnvelope(vectors.peerlist_join).line);
    expect(
      encodePeerlist([
        { nick: MAKER, location: A, disconnected: true },
        { nick: DIR, location: B, disconnected: false },
      ]),
    ).toBe(decodeEnvelope(vectors.peerlist_leave).line);
  });

  it('reproduces the ng extended entry with sorted features', () => {
    expect(
      encodePeerlistEntry({
        nick: MAKER,
        location: A,
        disconnected: false,
        features: ['ping', 'peerlist_features', 'ping'],
      }),
    ).toBe(`${MAKER};${A};F:peerlist_features+ping`);
    expect(
      encodePeerlistEntry({ nick: MAKER, location: A, disconnected: true, features: ['b', 'a'] }),
    ).toBe(`${MAKER};${A};D;F:a+b`);
  });

  it('omits F: for an empty feature list and encodes no entries as ""', () => {
    expect(
      encodePeerlistEntry({ nick: MAKER, location: A, disconnected: false, features: [] }),
    ).toBe(`${MAKER};${A}`);
    expect(encodePeerlist([])).toBe('');
  });

  it.each<[string, PeerlistEntry]>([
    ['empty nick', { nick: '', location: A, disconnected: false }],
    ['nick with ;', { nick: 'a;b', location: A, disconnected: false }],
    ['nick with ,', { nick: 'a,b', location: A, disconnected: false }],
    ['empty location', { nick: MAKER, location: '', disconnected: false }],
    ['location with ,', { nick: MAKER, location: 'x,y:1', disconnected: false }],
    ['feature with +', { nick: MAKER, location: A, disconnected: false, features: ['a+b'] }],
    ['feature with ,', { nick: MAKER, location: A, disconnected: false, features: ['a,b'] }],
    ['empty feature', { nick: MAKER, location: A, disconnected: false, features: [''] }],
  ])('refuses an entry with %s', (_name, entry) => {
    let err: unknown;
    try {
      encodePeerlistEntry(entry);
    } catch (e) {
      err = e;
    }
    expect(hasCode(err, 'ERR_PROTOCOL')).toBe(true);
  });
});

describe('decodePeerlist (§3.2, §3.4)', () => {
  it('decodes the vectors', () => {
    expect(decodePeerlist(decodeEnvelope(vectors.peerlist_leave).line)).toEqual([
      { nick: MAKER, location: A, disconnected: true },
      { nick: DIR, location: B, disconnected: false },
    ]);
  });

  it('accepts ;D, ;F: and ;D;F: entries', () => {
    expect(
      decodePeerlist(`${MAKER};${A};F:peerlist_features+ping,n;NOT-SERVING-ONION;D;F:ping`),
    ).toEqual([
      { nick: MAKER, location: A, disconnected: false, features: ['peerlist_features', 'ping'] },
      { nick: 'n', location: 'NOT-SERVING-ONION', disconnected: true, features: ['ping'] },
    ]);
  });

  it('gives [] for an empty line (ng, no peers)', () => {
    expect(decodePeerlist('')).toEqual([]);
  });

  it('skips empty and malformed entries and keeps the rest', () => {
    const line = [
      '',
      'nosemicolon',
      ';loc:1',
      'nick;',
      'n1;l:1;X',
      'n2;l:1;F:a;D',
      'n3;l:1;D;X',
      'n4;l:1;D;F:a;extra',
      'ok;l:1',
      'ok2;l:2;D',
      'ok3;l:3;F:',
      'ok4;l:4;F:+a++b',
      '',
    ].join(',');
    expect(decodePeerlist(line)).toEqual([
      { nick: 'ok', location: 'l:1', disconnected: false },
      { nick: 'ok2', location: 'l:2', disconnected: true },
      { nick: 'ok3', location: 'l:3', disconnected: false },
      { nick: 'ok4', location: 'l:4', disconnected: false, features: ['a', 'b'] },
    ]);
  });

  it('never throws and round-trips whatever it returns', () => {
    const text = fc.string({
      unit: fc.constantFrom(',', ';', 'D', 'F', ':', '+', 'a', 'J', '1'),
      maxLength: 60,
    });
    fc.assert(
      fc.property(fc.oneof(text, fc.string({ unit: 'binary' })), (line) => {
        const entries = decodePeerlist(line);
        expect(decodePeerlist(encodePeerlist(entries))).toEqual(entries);
      }),
      { numRuns: 1000 },
    );
  });
});
