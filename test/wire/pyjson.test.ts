import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { pyJsonDumps, type PyJsonValue } from '../../src/wire/pyjson.js';
import { transcriptLines, vectors } from './fixtures.js';

/** JSON.parse then pyJsonDumps: the value a Python sender would have serialised. */
function redump(text: string): string {
  return pyJsonDumps(JSON.parse(text) as PyJsonValue);
}

describe('pyJsonDumps against reference bytes', () => {
  const cases: [string, string][] = [
    ['client_hs_env', vectors.client_hs_env],
    ['client_hs_line', vectors.client_hs_line],
    ['maker_hs_line', vectors.maker_hs_line],
    ['dn_hs_env', vectors.dn_hs_env],
    ['peerlist_join', vectors.peerlist_join],
    ['peerlist_leave', vectors.peerlist_leave],
    ['pub_orderbook', vectors.pub_orderbook],
    ['pub_offer', vectors.pub_offer],
    ['fill.envelope', vectors.fill.envelope],
  ];
  it.each(cases)('reproduces vectors.json %s', (_name, text) => {
    expect(redump(text)).toBe(text);
  });

  it('reproduces every > line of the reference transcript', () => {
    const lines = transcriptLines();
    expect(lines).toHaveLength(25);
    for (const { text } of lines) expect(redump(text)).toBe(text);
  });

  it('builds the client handshake envelope from scratch', () => {
    expect(pyJsonDumps({ type: 793, line: vectors.client_hs_line })).toBe(vectors.client_hs_env);
  });
});

describe('pyJsonDumps matches CPython json.dumps (outputs checked with Python 3)', () => {
  const cases: [string, PyJsonValue, string][] = [
    ['non-ASCII and astral', 'é€😀', '"\\u00e9\\u20ac\\ud83d\\ude00"'],
    [
      'short escapes and control characters',
      '\x7f\x00\x1f\u2028"\\/\b\f\n\r\t',
      '"\\u007f\\u0000\\u001f\\u2028\\"\\\\/\\b\\f\\n\\r\\t"',
    ],
    [
      'mixed containers',
      { a: 'x', b: [1, -2, true, false, null, {}], c: [] },
      '{"a": "x", "b": [1, -2, true, false, null, {}], "c": []}',
    ],
    ['large integer printed in full', 10 ** 21, '1000000000000000000000'],
    ['negative zero as an int', -0, '0'],
    [
      'printable ASCII untouched',
      " ~!#$%&'()*+,-.:;<=>?@[]^_`{|}",
      '" ~!#$%&\'()*+,-.:;<=>?@[]^_`{|}"',
    ],
    ['lone surrogate', '\ud800x', '"\\ud800x"'],
    ['escaped key', { 'é"': 1 }, '{"\\u00e9\\"": 1}'],
    ['nested empty', [[], {}, [[]]], '[[], {}, [[]]]'],
    ['top-level scalars', null, 'null'],
  ];
  it.each(cases)('%s', (_name, value, expected) => {
    expect(pyJsonDumps(value)).toBe(expected);
  });

  it('keeps insertion order of keys', () => {
    expect(pyJsonDumps({ z: 1, a: 2, m: 3 })).toBe('{"z": 1, "a": 2, "m": 3}');
  });
});

describe('pyJsonDumps rejects what Python would not send here', () => {
  it.each([
    ['a float', 1.5],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['a nested float', { a: [0.1] }],
  ])('throws TypeError for %s', (_name, value) => {
    expect(() => pyJsonDumps(value as PyJsonValue)).toThrow(TypeError);
  });

  it('throws TypeError for undefined, functions, bigints, class instances and cycles', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const bad of [undefined, () => 1, 1n, new Date(0), new Map(), cyclic, [undefined]]) {
      expect(() => pyJsonDumps(bad as unknown as PyJsonValue)).toThrow(TypeError);
    }
  });

  it('serialises a shared (non-cyclic) sub-object twice', () => {
    const shared = { a: 1 };
    expect(pyJsonDumps([shared, shared])).toBe('[{"a": 1}, {"a": 1}]');
  });
});

/** Any UTF-16 code unit, lone surrogates included. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
const anyString = fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: codeUnit }));

const pyJsonValue: fc.Arbitrary<PyJsonValue> = fc.letrec<{ value: PyJsonValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    anyString,
    fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(anyString, tie('value'), { maxKeys: 5, noNullPrototype: true }),
  ),
})).value;

describe('pyJsonDumps properties', () => {
  it('(c) output is pure ASCII and JSON.parse-s back to the same value', () => {
    fc.assert(
      fc.property(pyJsonValue, (v) => {
        const text = pyJsonDumps(v);
        expect(/^[\x20-\x7e]*$/.test(text)).toBe(true);
        expect(JSON.parse(text)).toStrictEqual(v);
      }),
      { numRuns: 500 },
    );
  });

  it('agrees with JSON.stringify up to separators on printable-ASCII strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary-ascii' }), (s) => {
        const printable = s.replace(/[^\x20-\x7e]/g, '');
        expect(pyJsonDumps(printable)).toBe(JSON.stringify(printable));
      }),
    );
  });
});
