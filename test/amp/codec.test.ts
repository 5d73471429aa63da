import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AMP_MAX_VALUE_BYTES,
  AmpBoxDecoder,
  boxFrom,
  decodeBoxes,
  encodeBox,
  type AmpBox,
} from '../../src/amp/box.js';
import {
  AMP_MAX_JSON_NESTING_DEPTH,
  pyFloatRepr,
  pyJsonDumpsValue,
  readArgument,
  writeArgument,
} from '../../src/amp/arguments.js';
import {
  askTag,
  classifyBox,
  decodeArguments,
  decodeResponse,
  encodeAnswer,
  encodeRequest,
  isJmCommand,
  JM_COMMANDS,
  unhandledCommandBox,
} from '../../src/amp/commands.js';
import { AmpError, hasAmpCode, type AmpErrorCode } from '../../src/amp/errors.js';
import { hasCode } from '../../src/errors.js';
import { loadAmpTranscript } from './transcript.js';

const transcript = loadAmpTranscript();

function ampCodeOf(fn: () => unknown): AmpErrorCode | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof AmpError) return err.ampCode;
    throw err;
  }
  return undefined;
}

describe('AMP boxes', () => {
  it('reads the whole transcript', () => {
    expect(transcript.length).toBe(100);
    const commands = new Set(transcript.map((b) => b.what));
    expect(commands.has('JMInit') && commands.has('JMSigReceived')).toBe(true);
  });

  it('writes keys sorted with u16 lengths and the 0000 terminator, as Twisted does', () => {
    const jmUp = transcript.find((b) => b.what === 'JMUp' && b.side === 'maker');
    expect(jmUp).toBeDefined();
    const bytes = encodeBox(jmUp?.box ?? new Map());
    expect(bytes.toString('hex')).toBe(
      '0004' +
        Buffer.from('_ask').toString('hex') +
        '0001' +
        Buffer.from('2').toString('hex') +
        '0008' +
        Buffer.from('_command').toString('hex') +
        '0004' +
        Buffer.from('JMUp').toString('hex') +
        '0000',
    );
    // Insertion order does not matter; byte order of the keys does ('_' 0x5f sorts before 'a').
    const a = encodeBox(boxFrom({ accepted: 'True', _answer: '1' }));
    const b = encodeBox(boxFrom({ _answer: '1', accepted: 'True' }));
    expect(a.equals(b)).toBe(true);
    expect(a.subarray(2, 9).toString()).toBe('_answer');
  });

  it('re-encodes every transcript box byte for byte from its typed arguments', () => {
    for (const entry of transcript) {
      const raw = encodeBox(entry.box);
      expect(decodeBoxes(raw)).toEqual([entry.box]);
      const classified = classifyBox(entry.box);
      if (classified.kind === 'answer') {
        expect(encodeBox(encodeAnswer(classified.tag, decodeResponse(entry.box))).equals(raw)).toBe(
          true,
        );
        continue;
      }
      expect(classified.kind).toBe('request');
      if (classified.kind !== 'request') continue;
      expect(isJmCommand(classified.command)).toBe(true);
      if (!isJmCommand(classified.command)) continue;
      const args = decodeArguments(classified.command, entry.box);
      const again = encodeBox(encodeRequest(classified.command, args, classified.ask ?? ''));
      expect({ line: entry.line, hex: again.toString('hex') }).toEqual({
        line: entry.line,
        hex: raw.toString('hex'),
      });
    }
  });

  it('decodes ListOf(Unicode) and String arguments of the transcript', () => {
    const makeTx = transcript.find((b) => b.what === 'JMMakeTx');
    const sigs = transcript.find((b) => b.what === 'JMTXSigs');
    if (makeTx === undefined || sigs === undefined) throw new Error('fixture');
    const tx = decodeArguments('JMMakeTx', makeTx.box);
    expect(tx.nick_list).toEqual(['J58UfKxwjnMn8gAi']);
    expect(Buffer.from(tx.tx).subarray(0, 4).toString('hex')).toBe('02000000');
    const decoded = decodeArguments('JMTXSigs', sigs.box);
    expect(decoded.sigs).toHaveLength(1);
    expect(decoded.sigs[0]?.startsWith('SDBFAiEAloNw')).toBe(true);
  });

  it('decodes the same boxes whatever the chunk boundaries', () => {
    const stream = Buffer.concat(transcript.slice(0, 40).map((b) => encodeBox(b.box)));
    const expected = transcript.slice(0, 40).map((b) => b.box);
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 30 }),
        (cuts) => {
          const points = [...new Set(cuts)].sort((x, y) => x - y);
          const decoder = new AmpBoxDecoder();
          const boxes: AmpBox[] = [];
          let start = 0;
          for (const point of [...points, stream.length]) {
            boxes.push(...decoder.push(stream.subarray(start, point)));
            start = point;
          }
          decoder.end();
          expect(boxes).toEqual(expected);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('turns random bytes into boxes or an AmpError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          decodeBoxes(bytes, { maxBoxBytes: 1000, maxBoxKeys: 20 });
        } catch (err) {
          expect(err).toBeInstanceOf(AmpError);
          expect(hasCode(err, 'ERR_PROTOCOL')).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('refuses over-long keys and values, truncated and oversized boxes, repeated keys', () => {
    expect(
      ampCodeOf(() => encodeBox(new Map([['v', Buffer.alloc(AMP_MAX_VALUE_BYTES + 1)]]))),
    ).toBe('ERR_AMP_TOO_LONG');
    expect(ampCodeOf(() => encodeBox(new Map([['k'.repeat(256), Buffer.alloc(1)]])))).toBe(
      'ERR_AMP_TOO_LONG',
    );
    expect(ampCodeOf(() => encodeBox(new Map([['', Buffer.alloc(1)]])))).toBe('ERR_AMP_TOO_LONG');
    // A key length of 256 on the wire.
    expect(ampCodeOf(() => decodeBoxes(Buffer.from('0100', 'hex')))).toBe('ERR_AMP_TOO_LONG');
    const whole = encodeBox(boxFrom({ _answer: '1', accepted: 'True' }));
    expect(ampCodeOf(() => decodeBoxes(whole.subarray(0, whole.length - 1)))).toBe(
      'ERR_AMP_TRUNCATED',
    );
    expect(ampCodeOf(() => decodeBoxes(whole, { maxBoxBytes: 10 }))).toBe('ERR_AMP_BAD_BOX');
    expect(ampCodeOf(() => decodeBoxes(whole, { maxBoxKeys: 1 }))).toBe('ERR_AMP_BAD_BOX');
    const twice = Buffer.concat([whole.subarray(0, whole.length - 2), whole]);
    expect(ampCodeOf(() => decodeBoxes(twice))).toBe('ERR_AMP_BAD_BOX');
    // After a failure the decoder stays failed.
    const decoder = new AmpBoxDecoder();
    expect(ampCodeOf(() => decoder.push(Buffer.from('0100', 'hex')))).toBe('ERR_AMP_TOO_LONG');
    expect(ampCodeOf(() => decoder.push(whole))).toBe('ERR_AMP_BAD_BOX');
  });

  it('answers an unknown command as Twisted does (UNHANDLED)', () => {
    const box = unhandledCommandBox('7', 'JMFrobnicate');
    expect(classifyBox(box)).toEqual({
      kind: 'error',
      tag: '7',
      code: 'UNHANDLED',
      description: "Unhandled Command: b'JMFrobnicate'",
    });
    expect(isJmCommand('JMFrobnicate')).toBe(false);
    expect(isJmCommand('toString')).toBe(false);
    expect(ampCodeOf(() => classifyBox(boxFrom({ x: 'y' })))).toBe('ERR_AMP_BAD_ENVELOPE');
  });
});

describe('AMP arguments', () => {
  it('has the 26 JoinMarket commands of jmbase/commands.py', () => {
    // The shared notes say 27; jmbase/commands.py (0.9.12) and the notes' own list have 26.
    expect(Object.keys(JM_COMMANDS)).toHaveLength(26);
    expect(askTag(10)).toBe('a');
  });

  it('keeps a leading U+FEFF of a Unicode argument, as Python bytes.decode("utf-8") does', () => {
    const box: AmpBox = new Map([['nick', Buffer.from('\uFEFFJ5x', 'utf8')]]);
    expect(readArgument(box, 'nick', 'Unicode')).toBe('\uFEFFJ5x');
  });

  it('chunks BigUnicode every 65,535 bytes under name.N and joins it back', () => {
    // 'é' is 2 bytes: a chunk boundary falls inside a character, as jmbase's byte split allows.
    const text = 'ab' + 'é'.repeat(70_000) + 'z';
    const box: AmpBox = new Map();
    writeArgument(box, 'orderbook', 'BigUnicode', text);
    expect([...box.keys()]).toEqual(['orderbook.0', 'orderbook.1', 'orderbook.2']);
    expect(box.get('orderbook.0')?.length).toBe(65_535);
    expect(box.get('orderbook.1')?.length).toBe(65_535);
    expect(box.get('orderbook.2')?.length).toBe(140_003 - 2 * 65_535);
    expect(readArgument(decodeBoxes(encodeBox(box))[0] ?? box, 'orderbook', 'BigUnicode')).toBe(
      text,
    );
    // Reading stops at the first missing index; a cut inside a character is then not UTF-8.
    box.delete('orderbook.1');
    expect(ampCodeOf(() => readArgument(box, 'orderbook', 'BigUnicode'))).toBe(
      'ERR_AMP_BAD_ARGUMENT',
    );
    const ascii: AmpBox = new Map();
    writeArgument(ascii, 'o', 'BigUnicode', 'x'.repeat(140_000));
    ascii.delete('o.1');
    expect(readArgument(ascii, 'o', 'BigUnicode')).toBe('x'.repeat(65_535));
    const empty: AmpBox = new Map();
    writeArgument(empty, 'fidelitybonds', 'BigUnicode', '');
    expect(empty.size).toBe(0);
    expect(readArgument(empty, 'fidelitybonds', 'BigUnicode')).toBe('');
  });

  it('refuses malformed arguments with ERR_AMP_BAD_ARGUMENT or ERR_AMP_TRUNCATED', () => {
    const box = boxFrom({ b: 'true', i: '12x' });
    box.set('u', Buffer.from([0xff]));
    expect(ampCodeOf(() => readArgument(box, 'b', 'Boolean'))).toBe('ERR_AMP_BAD_ARGUMENT');
    expect(ampCodeOf(() => readArgument(box, 'i', 'Integer'))).toBe('ERR_AMP_BAD_ARGUMENT');
    expect(ampCodeOf(() => readArgument(box, 'u', 'Unicode'))).toBe('ERR_AMP_BAD_ARGUMENT');
    expect(ampCodeOf(() => readArgument(box, 'missing', 'Unicode'))).toBe('ERR_AMP_BAD_ARGUMENT');
    box.set('l', Buffer.from('0005abc', 'hex'));
    expect(ampCodeOf(() => readArgument(box, 'l', 'ListOfUnicode'))).toBe('ERR_AMP_TRUNCATED');
    box.set('j', Buffer.from('{"a": '));
    expect(ampCodeOf(() => readArgument(box, 'j', 'JsonEncodable'))).toBe('ERR_AMP_BAD_ARGUMENT');
    expect(
      ampCodeOf(() => {
        writeArgument(new Map(), 'u', 'Unicode', 'x'.repeat(70_000));
      }),
    ).toBe('ERR_AMP_TOO_LONG');
    expect(hasAmpCode(new AmpError('ERR_AMP_BAD_BOX', 'x'), 'ERR_AMP_BAD_BOX')).toBe(true);
  });

  it('writes JSON and numbers as Python does', () => {
    expect(pyJsonDumpsValue({ a: [1, 'é', null, true], b: 0.0002 })).toBe(
      '{"a": [1, "\\u00e9", null, true], "b": 0.0002}',
    );
    expect(pyFloatRepr(1e-5)).toBe('1e-05');
    expect(pyFloatRepr(0.0001)).toBe('0.0001');
    expect(pyFloatRepr(1.5e-7)).toBe('1.5e-07');
    expect(pyFloatRepr(1e16)).toBe('1e+16');
    expect(pyFloatRepr(123.25)).toBe('123.25');
    expect(pyFloatRepr(-2.5)).toBe('-2.5');
    expect(pyFloatRepr(20_000_000)).toBe('20000000');
  });
});

describe('JsonEncodable nesting', () => {
  /** `[[...[]...]]` with `depth` lists, built without recursion. */
  const nested = (depth: number): unknown[] => {
    let value: unknown[] = [];
    for (let i = 1; i < depth; i++) value = [value];
    return value;
  };

  it(`reads and writes values nesting ${AMP_MAX_JSON_NESTING_DEPTH} deep`, () => {
    const box: AmpBox = new Map();
    writeArgument(box, 'a', 'JsonEncodable', nested(AMP_MAX_JSON_NESTING_DEPTH + 1) as never);
    expect(readArgument(box, 'a', 'JsonEncodable')).toEqual(nested(AMP_MAX_JSON_NESTING_DEPTH + 1));
    expect(readArgument(boxFrom({ a: '[{"b": {"c": [1]}}]' }), 'a', 'JsonEncodable')).toEqual([
      { b: { c: [1] } },
    ]);
  });

  it('refuses deeper values with AmpError ERR_AMP_BAD_ARGUMENT, never a RangeError', () => {
    // 32,000 levels fit one 64 KiB value; the recursion serialising them overflowed the stack.
    const text = `${'['.repeat(32_000)}${']'.repeat(32_000)}`;
    const thrownBy = (f: () => unknown): unknown => {
      try {
        f();
      } catch (err) {
        return err;
      }
      return undefined;
    };
    const read = (t: string) => (): unknown =>
      readArgument(boxFrom({ a: t }), 'a', 'JsonEncodable');
    expect(hasAmpCode(thrownBy(read(text)), 'ERR_AMP_BAD_ARGUMENT')).toBe(true);
    const depth = AMP_MAX_JSON_NESTING_DEPTH + 1;
    const deeper = `${'['.repeat(depth)}1${']'.repeat(depth)}`;
    expect(hasAmpCode(thrownBy(read(deeper)), 'ERR_AMP_BAD_ARGUMENT')).toBe(true);
    for (const value of [nested(32_000), [nested(AMP_MAX_JSON_NESTING_DEPTH), 1]]) {
      const thrown = thrownBy(() => pyJsonDumpsValue([value]));
      expect(hasAmpCode(thrown, 'ERR_AMP_BAD_ARGUMENT')).toBe(true);
    }
  });
});
