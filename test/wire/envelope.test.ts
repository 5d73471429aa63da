import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hasCode, ProtocolError } from '../../src/errors.js';
import {
  canonicalFrame,
  decodeEnvelope,
  decodeReceivedEnvelope,
  encodeEnvelope,
  exceedsJsonNestingDepth,
  MAX_JSON_NESTING_DEPTH,
} from '../../src/wire/envelope.js';
import { encodeLine, LineDecoder } from '../../src/wire/framing.js';
import { MessageType } from '../../src/wire/message-types.js';
import { transcriptLines, vectors } from './fixtures.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  expect.fail('expected a throw');
}

function protocolErrorOf(text: string): ProtocolError {
  const err = thrown(() => decodeEnvelope(text));
  expect(err).toBeInstanceOf(ProtocolError);
  expect(hasCode(err, 'ERR_PROTOCOL')).toBe(true);
  return err as ProtocolError;
}

describe('encodeEnvelope', () => {
  it('reproduces the reference envelopes (§11.3-§11.5)', () => {
    expect(encodeEnvelope(MessageType.HANDSHAKE, vectors.client_hs_line)).toBe(
      vectors.client_hs_env,
    );
    expect(encodeEnvelope(MessageType.PRIVMSG, vectors.fill.line)).toBe(vectors.fill.envelope);
    expect(encodeEnvelope(MessageType.PUBMSG, 'J56UEbZ4FqgPQFLq!PUBLIC!orderbook')).toBe(
      vectors.pub_orderbook,
    );
    expect(encodeEnvelope(791, '')).toBe('{"type": 791, "line": ""}');
  });

  it('escapes non-ASCII as Python does', () => {
    expect(encodeEnvelope(687, 'é')).toBe('{"type": 687, "line": "\\u00e9"}');
  });

  it.each([785, 787, 797, 801, 0, 686, 1.5])('refuses to send type %s', (type) => {
    const err = thrown(() => encodeEnvelope(type, ''));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(hasCode(err, 'ERR_PROTOCOL')).toBe(true);
  });
});

describe('decodeEnvelope', () => {
  it('decodes the vectors', () => {
    expect(decodeEnvelope(vectors.client_hs_env)).toEqual({
      type: 793,
      line: vectors.client_hs_line,
    });
    expect(decodeEnvelope(vectors.fill.envelope)).toEqual({ type: 685, line: vectors.fill.line });
  });

  it('round-trips every transcript line byte for byte', () => {
    for (const { text } of transcriptLines()) {
      const env = decodeEnvelope(text);
      expect(encodeEnvelope(env.type, env.line)).toBe(text);
    }
  });

  it('accepts any valid JSON layout and ignores extra keys (§1.2)', () => {
    expect(decodeEnvelope('{"line":"x","type":687}')).toEqual({ type: 687, line: 'x' });
    expect(decodeEnvelope(' {"extra": [1, {"a": null}], "type": 685, "line": ""} ')).toEqual({
      type: 685,
      line: '',
    });
    // Unknown types are returned; the caller ignores them as the reference does (§1.4).
    expect(decodeEnvelope('{"type": 12345, "line": "x"}')).toEqual({ type: 12345, line: 'x' });
    // The §11.8 negative vector is well-formed: refusing to *send* 801 is encodeEnvelope's job.
    expect(decodeEnvelope('{"type": 801, "line": ""}')).toEqual({ type: 801, line: '' });
  });

  it('keeps the last of duplicate keys, as Python json.loads does', () => {
    expect(decodeEnvelope('{"type": 1, "type": 687, "line": "a", "line": "b"}')).toEqual({
      type: 687,
      line: 'b',
    });
  });

  it.each([
    ['not JSON', 'hello'],
    ['truncated', '{"type": 687, "line": "x"'],
    ['empty', ''],
    ['an array', '[687, "x"]'],
    ['null', 'null'],
    ['a string', '"x"'],
    ['no type', '{"line": "x"}'],
    ['no line', '{"type": 687}'],
    ['string type', '{"type": "687", "line": "x"}'],
    ['float type', '{"type": 687.5, "line": "x"}'],
    ['bool type', '{"type": true, "line": "x"}'],
    ['null type', '{"type": null, "line": "x"}'],
    ['number line', '{"type": 687, "line": 5}'],
    ['null line', '{"type": 687, "line": null}'],
    ['inherited-looking keys', '{"__proto__": {"type": 687, "line": "x"}}'],
  ])('throws ERR_PROTOCOL for %s', (_name, text) => {
    protocolErrorOf(text);
  });

  it('quotes at most 80 characters of the text in the message', () => {
    const long = '{"type": "' + 'A'.repeat(5000) + '", "line": "x"}';
    const err = protocolErrorOf(long);
    expect(err.message.length).toBeLessThan(200);
    expect(err.message).not.toContain('A'.repeat(81));
    expect(protocolErrorOf('x'.repeat(10_000)).message).not.toContain('x'.repeat(81));
  });

  it('applies ng nesting rule: members at depth 11 are rejected (§1.2)', () => {
    const wrap = (inner: string, n: number): string => '['.repeat(n) + inner + ']'.repeat(n);
    const env = (extra: string): string => `{"type": 687, "line": "x", "e": ${extra}}`;
    // The envelope object is depth 0; "e" is at depth 1; n brackets put their contents at 1 + n.
    expect(decodeEnvelope(env(wrap('1', 9)))).toEqual({ type: 687, line: 'x' });
    expect(decodeEnvelope(env(wrap('', 10)))).toEqual({ type: 687, line: 'x' });
    protocolErrorOf(env(wrap('1', 10)));
    protocolErrorOf(env(wrap('', 11)));
    protocolErrorOf(env(wrap('"s"', 10)));
  });

  it('rejects very deep nesting without recursion', () => {
    const deep =
      '{"type": 687, "line": "x", "e": ' + '['.repeat(1_000_000) + ']'.repeat(1_000_000) + '}';
    protocolErrorOf(deep);
  });
});

describe('exceedsJsonNestingDepth', () => {
  it('ignores brackets inside strings, including after escaped quotes', () => {
    expect(exceedsJsonNestingDepth('"' + '['.repeat(50) + '"')).toBe(false);
    expect(exceedsJsonNestingDepth('["\\"[[[[[[[[[[[[[[[["]')).toBe(false);
    expect(exceedsJsonNestingDepth('["\\\\", ' + '['.repeat(12) + ']'.repeat(12) + ']')).toBe(true);
  });

  it('counts as ng does', () => {
    expect(MAX_JSON_NESTING_DEPTH).toBe(10);
    expect(exceedsJsonNestingDepth('1')).toBe(false);
    expect(exceedsJsonNestingDepth('['.repeat(10) + '1' + ']'.repeat(10))).toBe(false);
    expect(exceedsJsonNestingDepth('['.repeat(11) + ']'.repeat(11))).toBe(false);
    expect(exceedsJsonNestingDepth('['.repeat(11) + ' 1 ' + ']'.repeat(11))).toBe(true);
    expect(exceedsJsonNestingDepth('{"a": '.repeat(11) + '1' + '}'.repeat(11))).toBe(true);
    expect(exceedsJsonNestingDepth('{"a": '.repeat(10) + '{}' + '}'.repeat(10))).toBe(false);
    expect(exceedsJsonNestingDepth('[[1]]', 1)).toBe(true);
  });
});

describe('envelope properties', () => {
  it('(b) random bytes through LineDecoder + decodeEnvelope give values or ProtocolError only', () => {
    const noise = fc.oneof(
      fc.uint8Array({ maxLength: 400 }),
      // Mostly-JSON noise reaches deeper into the parser than uniform bytes.
      fc
        .array(
          fc.constantFrom(
            '{',
            '}',
            '[',
            ']',
            '"',
            '\\',
            ':',
            ',',
            ' ',
            '\r',
            '\n',
            'type',
            'line',
            '1',
            'é',
            '\u0000',
          ),
          { maxLength: 80 },
        )
        .map((parts) => new TextEncoder().encode(parts.join(''))),
    );
    fc.assert(
      fc.property(fc.array(noise, { maxLength: 8 }), (chunks) => {
        const d = new LineDecoder(300);
        for (const chunk of chunks) {
          let lines: string[];
          try {
            lines = d.push(chunk);
          } catch (err) {
            expect(err).toBeInstanceOf(ProtocolError);
            return;
          }
          for (const line of lines) {
            try {
              const env = decodeEnvelope(line);
              expect(Number.isInteger(env.type)).toBe(true);
              expect(typeof env.line).toBe('string');
            } catch (err) {
              expect(err).toBeInstanceOf(ProtocolError);
            }
          }
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('decode(encode(type, line)) is the identity for sendable types', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(685, 687, 789, 791, 793, 795, 798, 799, 803, 805, 807),
        fc.string({ unit: 'binary' }),
        (type, line) => {
          const text = encodeEnvelope(type, line);
          expect(decodeEnvelope(text)).toEqual({ type, line });
          expect(/^[\x20-\x7e]*$/.test(text)).toBe(true);
        },
      ),
    );
  });
});

describe('decodeReceivedEnvelope and canonicalFrame', () => {
  const frameOf = (type: number, line: string): Buffer => encodeLine(encodeEnvelope(type, line));
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const plain = 'J5aaaaaaaaaaaaaa!J5bbbbbbbbbbbbbb!fill 0 100000 abc sig';

  it('reads a canonical 685 or 687 from its bytes and marks it canonical', () => {
    for (const type of [MessageType.PRIVMSG, MessageType.PUBMSG]) {
      const raw = Buffer.from(encodeEnvelope(type, plain));
      expect(decodeReceivedEnvelope(raw, utf8)).toEqual({ type, line: plain, canonical: true });
      // A plain Uint8Array view (not a Buffer) too.
      const view = new Uint8Array(raw.buffer, raw.byteOffset, raw.length);
      expect(decodeReceivedEnvelope(view, utf8)).toEqual({ type, line: plain, canonical: true });
    }
    expect(decodeReceivedEnvelope(Buffer.from(encodeEnvelope(685, '')), utf8)).toEqual({
      type: 685,
      line: '',
      canonical: true,
    });
  });

  it('decodes anything else as decodeEnvelope does, not canonical', () => {
    // Other spacing, other key order, an escape, non-ASCII, another type, an extra key.
    for (const text of [
      `{"type":685,"line":"${plain}"}`,
      `{"line": "${plain}", "type": 685}`,
      encodeEnvelope(685, 'a"b'),
      encodeEnvelope(685, 'a\\b'),
      encodeEnvelope(687, 'caf\u00e9'),
      `{"type": 685, "line": "café"}`,
      encodeEnvelope(793, plain),
      `{"type": 685, "line": "${plain}", "x": "y"}`,
      // Byte 11 as in a privmsg or pubmsg, another type.
      `{"type": 695, "line": "${plain}"}`,
      `{"type": 587, "line": "${plain}"}`,
    ]) {
      const decoded = decodeEnvelope(text);
      expect(decodeReceivedEnvelope(Buffer.from(text, 'utf8'), utf8)).toEqual({
        ...decoded,
        canonical: false,
      });
    }
  });

  it("throws what decodeEnvelope throws, and the line decoder's error for invalid UTF-8", () => {
    for (const text of [
      '{"type": 685, "line": "a"',
      '{"type": 685, "line": 5}',
      '[]',
      '{"TYPE": 685, "line": "a"}',
    ]) {
      expect(() => decodeReceivedEnvelope(Buffer.from(text), utf8)).toThrow(ProtocolError);
    }
    // Starts like a canonical privmsg, but 0xff is no UTF-8: the slow path's decoder throws.
    const bad = Buffer.concat([
      Buffer.from('{"type": 685, "line": "a'),
      Buffer.from([0xff]),
      Buffer.from('"}'),
    ]);
    const decoder = new LineDecoder();
    expect(() => decodeReceivedEnvelope(bad, decoder)).toThrow(/UTF-8/);
  });

  it('never differs from decodeEnvelope, and a canonical frame is what re-serialising gives', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 60 }),
        fc.constantFrom(685, 687, 793),
        fc.boolean(),
        (line, type, spaced) => {
          const text = spaced
            ? encodeEnvelope(type, line)
            : `{"type":${type},"line":${JSON.stringify(line)}}`;
          const raw = Buffer.from(text, 'utf8');
          const received = decodeReceivedEnvelope(raw, utf8);
          expect({ type: received.type, line: received.line }).toEqual(decodeEnvelope(text));
          if (received.canonical) expect(canonicalFrame(raw)).toEqual(frameOf(type, line));
          // Canonical exactly when the bytes are the encoding, for the relayed types.
          expect(received.canonical).toBe(
            type !== 793 &&
              raw.equals(Buffer.from(encodeEnvelope(type, line))) &&
              /^[\x20-\x7e]*$/.test(line),
          );
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('puts a suffix (the peerlist frame relayed with a privmsg) after the CR LF, in memory it is given', () => {
    const entry = frameOf(789, 'J5aaaaaaaaaaaaaa;abc.onion:5222');
    const raw = Buffer.from(encodeEnvelope(685, plain));
    const expected = Buffer.concat([frameOf(685, plain), entry]);
    expect(canonicalFrame(raw, entry)).toEqual(expected);
    const slab = Buffer.alloc(1024, 0x41);
    const frame = canonicalFrame(raw, entry, { take: (bytes) => slab.subarray(10, 10 + bytes) });
    expect(frame).toEqual(expected);
    expect(frame.buffer).toBe(slab.buffer);
  });
});
