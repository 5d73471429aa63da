import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hasCode, ProtocolError } from '../../src/errors.js';
import {
  encodeLine,
  LineDecoder,
  MAX_RECEIVE_LINE_BYTES,
  MAX_SEND_LINE_BYTES,
} from '../../src/wire/framing.js';
import { transcriptLines } from './fixtures.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Runs `fn` and returns what it threw (failing the test when it does not throw). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  expect.fail('expected a throw');
}

describe('limits', () => {
  it('are the spec values (§1.3)', () => {
    expect(MAX_SEND_LINE_BYTES).toBe(40_000);
    expect(MAX_RECEIVE_LINE_BYTES).toBe(65_536);
  });
});

describe('encodeLine', () => {
  it('appends CRLF to the UTF-8 bytes', () => {
    expect([...encodeLine('{"a": 1}')]).toEqual([...bytes('{"a": 1}\r\n')]);
    expect([...encodeLine('é')]).toEqual([0xc3, 0xa9, 0x0d, 0x0a]);
    expect([...encodeLine('')]).toEqual([0x0d, 0x0a]);
  });

  it('encodes a 40,000-byte line and refuses 40,001 bytes (§1.3, §11.8)', () => {
    const ok = encodeLine('x'.repeat(40_000));
    expect(ok.length).toBe(40_002);
    expect(ok.subarray(-2).toString('latin1')).toBe('\r\n');
    const err = thrown(() => encodeLine('x'.repeat(40_001)));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(hasCode(err, 'ERR_LINE_TOO_LONG')).toBe(true);
  });

  it('counts UTF-8 bytes, not characters', () => {
    // 20,000 two-byte characters = 40,000 bytes; one more ASCII byte is over the limit.
    expect(encodeLine('é'.repeat(20_000)).length).toBe(40_002);
    expect(
      hasCode(
        thrown(() => encodeLine('é'.repeat(20_000) + 'x')),
        'ERR_LINE_TOO_LONG',
      ),
    ).toBe(true);
  });

  it('refuses raw CR or LF inside the line', () => {
    expect(
      hasCode(
        thrown(() => encodeLine('a\nb')),
        'ERR_PROTOCOL',
      ),
    ).toBe(true);
    expect(
      hasCode(
        thrown(() => encodeLine('a\rb')),
        'ERR_PROTOCOL',
      ),
    ).toBe(true);
  });
});

describe('LineDecoder', () => {
  it('splits CRLF-delimited lines and keeps the unterminated tail', () => {
    const d = new LineDecoder();
    expect(d.push(bytes('one\r\ntwo\r\nthr'))).toEqual(['one', 'two']);
    expect(d.bufferedBytes).toBe(3);
    expect(d.push(bytes('ee\r'))).toEqual([]);
    expect(d.bufferedBytes).toBe(6);
    expect(d.push(bytes('\n'))).toEqual(['three']);
    expect(d.bufferedBytes).toBe(0);
  });

  it('accepts a bare LF as ng does and strips only one CR', () => {
    const d = new LineDecoder();
    expect(d.push(bytes('a\nb\r\n\r\n\nc\r\r\n'))).toEqual(['a', 'b', '', '', 'c\r']);
  });

  it('does not treat a lone CR as a delimiter', () => {
    const d = new LineDecoder();
    expect(d.push(bytes('a\rb\r\n'))).toEqual(['a\rb']);
  });

  it('handles a CR at the end of one chunk and the LF at the start of the next', () => {
    const d = new LineDecoder();
    expect(d.push(bytes('abc\r'))).toEqual([]);
    expect(d.push(bytes('\nxyz\r'))).toEqual(['abc']);
    expect(d.push(bytes('\n'))).toEqual(['xyz']);
  });

  it('decodes multi-byte UTF-8 split across chunks', () => {
    const d = new LineDecoder();
    const all = bytes('€😀\r\n');
    const out: string[] = [];
    for (const b of all) out.push(...d.push(Uint8Array.of(b)));
    expect(out).toEqual(['€😀']);
  });

  it('does not keep a reference to the caller chunk', () => {
    const d = new LineDecoder();
    const chunk = bytes('abc');
    d.push(chunk);
    chunk.fill(0x7a);
    expect(d.push(bytes('\r\n'))).toEqual(['abc']);
  });

  it('throws ProtocolError on invalid UTF-8, and stays failed', () => {
    const d = new LineDecoder();
    const err = thrown(() => d.push(Uint8Array.of(0x61, 0xff, 0x0d, 0x0a)));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(hasCode(err, 'ERR_PROTOCOL')).toBe(true);
    expect(thrown(() => d.push(bytes('ok\r\n')))).toBe(err);
  });

  it('rejects overlong encodings and encoded surrogates', () => {
    expect(
      hasCode(
        thrown(() => new LineDecoder().push(Uint8Array.of(0xc0, 0xaf, 0x0a))),
        'ERR_PROTOCOL',
      ),
    ).toBe(true);
    expect(
      hasCode(
        thrown(() => new LineDecoder().push(Uint8Array.of(0xed, 0xa0, 0x80, 0x0a))),
        'ERR_PROTOCOL',
      ),
    ).toBe(true);
  });

  it('keeps a leading BOM (no silent stripping)', () => {
    expect(new LineDecoder().push(Uint8Array.of(0xef, 0xbb, 0xbf, 0x61, 0x0a))).toEqual([
      '\ufeffa',
    ]);
  });

  it('decodes a 65,536-byte line and refuses a 65,537-byte line (§1.3)', () => {
    const ok = new LineDecoder();
    const lines = ok.push(bytes('x'.repeat(65_536) + '\r\n'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toHaveLength(65_536);

    const err = thrown(() => new LineDecoder().push(bytes('x'.repeat(65_537) + '\r\n')));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(hasCode(err, 'ERR_LINE_TOO_LONG')).toBe(true);
  });

  it('accepts the 65,536-byte line when it arrives in small chunks, CR and LF split', () => {
    const d = new LineDecoder();
    const big = bytes('y'.repeat(65_536) + '\r');
    for (let i = 0; i < big.length; i += 1000)
      expect(d.push(big.subarray(i, i + 1000))).toEqual([]);
    expect(d.bufferedBytes).toBe(65_537);
    const lines = d.push(bytes('\n'));
    expect(lines[0]).toHaveLength(65_536);
  });

  it('refuses a 65,537-byte line whose LF arrives in a later chunk', () => {
    const d = new LineDecoder();
    expect(d.push(bytes('z'.repeat(65_537)))).toEqual([]);
    expect(
      hasCode(
        thrown(() => d.push(bytes('\r\n'))),
        'ERR_LINE_TOO_LONG',
      ),
    ).toBe(true);
  });

  it('throws on an unterminated 65,538-byte buffer before any delimiter arrives', () => {
    const d = new LineDecoder();
    expect(d.push(bytes('q'.repeat(65_537)))).toEqual([]);
    expect(
      hasCode(
        thrown(() => d.push(bytes('q'))),
        'ERR_LINE_TOO_LONG',
      ),
    ).toBe(true);
    // In a single chunk too, and with a complete line before it.
    const d2 = new LineDecoder();
    expect(
      hasCode(
        thrown(() => d2.push(bytes('ok\r\n' + 'q'.repeat(65_538)))),
        'ERR_LINE_TOO_LONG',
      ),
    ).toBe(true);
  });

  it('bounds the buffered bytes whatever the chunk sizes', () => {
    const d = new LineDecoder(100);
    let err: unknown;
    try {
      for (let i = 0; i < 1000; i++) d.push(bytes('a'.repeat(7)));
    } catch (e) {
      err = e;
    }
    expect(hasCode(err, 'ERR_LINE_TOO_LONG')).toBe(true);
    expect(d.bufferedBytes).toBeLessThanOrEqual(101);
  });

  it('honours a custom limit', () => {
    const d = new LineDecoder(3);
    expect(d.push(bytes('abc\r\n'))).toEqual(['abc']);
    expect(
      hasCode(
        thrown(() => d.push(bytes('abcd\n'))),
        'ERR_LINE_TOO_LONG',
      ),
    ).toBe(true);
    expect(() => new LineDecoder(0)).toThrow(RangeError);
  });

  it('reassembles a large line arriving in 1-byte chunks', () => {
    // Its speed (linear, not quadratic, in the line length) is measured by bench/framing.ts.
    const d = new LineDecoder(300_000);
    const one = Uint8Array.of(0x41);
    for (let i = 0; i < 300_000; i++) expect(d.push(one)).toEqual([]);
    const lines = d.push(bytes('\r\n'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toHaveLength(300_000);
  });

  it('decodes the whole reference transcript as one stream', () => {
    const lines = transcriptLines().map((l) => l.text);
    const stream = encodeAll(lines);
    expect(new LineDecoder().push(stream)).toEqual(lines);
  });
});

function encodeAll(lines: readonly string[]): Uint8Array {
  return Buffer.concat(lines.map((l) => encodeLine(l)));
}

/** Cuts `data` at the given offsets (sorted, deduplicated, clamped). */
function split(data: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => Math.min(c, data.length)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(data.subarray(prev, p));
    prev = p;
  }
  out.push(data.subarray(prev));
  return out;
}

describe('LineDecoder properties', () => {
  it('(a) any split of a stream of lines yields the same lines', () => {
    const line = fc.string({ unit: 'binary', maxLength: 60 }).map((s) => s.replace(/[\r\n]/g, ''));
    fc.assert(
      fc.property(
        fc.array(line, { maxLength: 20 }),
        fc.array(fc.nat({ max: 3000 }), { maxLength: 30 }),
        fc.boolean(),
        (lines, cuts, bareLf) => {
          const stream = bareLf ? bytes(lines.map((l) => l + '\n').join('')) : encodeAll(lines);
          const d = new LineDecoder();
          const out: string[] = [];
          for (const chunk of split(stream, cuts)) out.push(...d.push(chunk));
          expect(out).toEqual(lines);
          expect(d.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('(a) a split line at the limit gives the same result as unsplit', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 60, max: 70 }),
        fc.array(fc.nat({ max: 80 }), { maxLength: 10 }),
        (len, cuts) => {
          const stream = bytes('w'.repeat(len) + '\r\n');
          const run = (chunks: Uint8Array[]): string[] | 'too-long' => {
            const d = new LineDecoder(64);
            const out: string[] = [];
            try {
              for (const c of chunks) out.push(...d.push(c));
            } catch (err) {
              if (hasCode(err, 'ERR_LINE_TOO_LONG')) return 'too-long';
              throw err;
            }
            return out;
          };
          const whole = run([stream]);
          expect(whole === 'too-long').toBe(len > 64);
          expect(run(split(stream, cuts))).toEqual(whole);
        },
      ),
    );
  });
});
