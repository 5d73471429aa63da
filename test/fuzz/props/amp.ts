/**
 * Fuzz properties of src/amp: the AMP box decoder and the argument readers, which read what a
 * jmclient sends to `onionmc joinmarketd` (docs/joinmarketd.md). Random bytes, and encoded boxes
 * with one byte changed, cut anywhere: the decoder gives the same boxes as from one chunk, or an
 * AmpError; every argument type reads any value or throws an AmpError.
 */
import { Buffer } from 'node:buffer';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { readArgument, type AmpArgumentType } from '../../../src/amp/arguments.js';
import { AmpBoxDecoder, encodeBox, type AmpBox } from '../../../src/amp/box.js';
import { AmpError } from '../../../src/amp/errors.js';
import { fuzzProperty, splitAt, UnexpectedThrow, type FuzzProperty } from '../property.js';

/** Small caps, so that random input reaches them. */
const CAPS = { maxBoxBytes: 2_000, maxBoxKeys: 16 };

/** Boxes as Twisted writes them: 1-255 byte keys, values up to 300 bytes. */
const box = fc
  .dictionary(
    fc.string({ minLength: 1, maxLength: 12 }),
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    { maxKeys: 6 },
  )
  .map((record) => new Map(Object.entries(record)));

/** A stream: random bytes, or encoded boxes with at most one byte changed. */
const stream = fc.oneof(
  fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)),
  fc
    .tuple(fc.array(box, { maxLength: 4 }), fc.option(fc.tuple(fc.nat(), fc.nat(255))))
    .map(([boxes, change]) => {
      const bytes = Buffer.concat(boxes.map((b) => encodeBox(b)));
      if (change !== null && bytes.length > 0) bytes[change[0] % bytes.length] = change[1];
      return bytes;
    }),
);

/** Reads `chunks` in order: the boxes before any fault, and the fault (anything thrown is rethrown). */
function decode(chunks: readonly Uint8Array[]): { boxes: AmpBox[]; error: AmpError | undefined } {
  const decoder = new AmpBoxDecoder(CAPS);
  const boxes: AmpBox[] = [];
  try {
    for (const chunk of chunks) {
      const read = decoder.read(chunk);
      boxes.push(...read.boxes);
      if (read.error !== undefined) return { boxes, error: read.error };
    }
  } catch (err) {
    throw new UnexpectedThrow('AmpBoxDecoder.read', err);
  }
  return { boxes, error: undefined };
}

const ARGUMENT_TYPES: readonly AmpArgumentType[] = [
  'Integer',
  'String',
  'Unicode',
  'Boolean',
  'JsonEncodable',
  'BigUnicode',
  'ListOfUnicode',
];

/** Values an argument may hold: random bytes, and texts near what each type accepts. */
const argumentValue = fc.oneof(
  fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b)),
  fc
    .constantFrom(
      '0',
      '-1',
      '+1',
      '1e3',
      '9007199254740993',
      'True',
      'False',
      'true',
      '{"a":[1,2]}',
      '[',
      '\u0000\u0003abc',
      '\u0000\u0005ab',
    )
    .map((s) => Buffer.from(s, 'utf8')),
);

/** Every property of src/amp. */
export const ampProperties: readonly FuzzProperty[] = [
  fuzzProperty({
    name: 'amp: the box decoder over any bytes cut anywhere gives the boxes and the AmpError of one chunk',
    runs: 100_000,
    property: () =>
      fc.property(stream, fc.array(fc.nat(), { maxLength: 8 }), (bytes, cuts) => {
        const whole = decode([bytes]);
        const cut = decode(splitAt(bytes, cuts));
        // The same boxes up to the failure, and a failure exactly when one chunk fails.
        return (
          isDeepStrictEqual(cut.boxes, whole.boxes) &&
          (cut.error === undefined) === (whole.error === undefined) &&
          cut.error?.ampCode === whole.error?.ampCode
        );
      }),
  }),
  fuzzProperty({
    name: 'amp: readArgument of any value, for every argument type, returns a value or throws an AmpError',
    runs: 100_000,
    property: () =>
      fc.property(
        fc.constantFrom(...ARGUMENT_TYPES),
        fc.array(argumentValue, { maxLength: 3 }),
        (type, values) => {
          // `a` and BigUnicode's `a.0`, `a.1`: all the keys an argument named `a` reads.
          const argumentBox: AmpBox = new Map(
            values.map((v, i) => [i === 0 ? 'a' : `a.${String(i - 1)}`, v]),
          );
          try {
            readArgument(argumentBox, 'a', type);
          } catch (err) {
            if (!(err instanceof AmpError)) throw new UnexpectedThrow(`readArgument ${type}`, err);
          }
          return true;
        },
      ),
  }),
];
