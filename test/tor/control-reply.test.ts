import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors.js';
import {
  ControlReplyParser,
  MAX_REPLY_LINE_BYTES,
  parseKeyValues,
  quoteString,
  type ControlReply,
} from '../../src/tor/control-reply.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function parseAll(text: string): ControlReply[] {
  return new ControlReplyParser().push(enc(text));
}

function expectCode(fn: () => unknown, code: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'expected a throw').toBeDefined();
  expect(hasCode(thrown, code as never), String(thrown)).toBe(true);
}

describe('ControlReplyParser', () => {
  it('parses a single-line reply', () => {
    expect(parseAll('250 OK\r\n')).toEqual([
      { status: 250, lines: [{ status: 250, text: 'OK' }], isAsync: false },
    ]);
  });

  it('parses a multi-line reply (PROTOCOLINFO as tor 0.4.9.11 sends it)', () => {
    const replies = parseAll(
      '250-PROTOCOLINFO 1\r\n' +
        '250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/tmp/x/control_auth_cookie"\r\n' +
        '250-VERSION Tor="0.4.9.11"\r\n' +
        '250 OK\r\n',
    );
    expect(replies).toHaveLength(1);
    expect(replies[0]!.status).toBe(250);
    expect(replies[0]!.lines.map((l) => l.text)).toEqual([
      'PROTOCOLINFO 1',
      'AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/tmp/x/control_auth_cookie"',
      'VERSION Tor="0.4.9.11"',
      'OK',
    ]);
  });

  it('parses a data reply and undoes dot-stuffing', () => {
    const replies = parseAll(
      '250+config-text=\r\nControlPort 9051\r\n..leading dot\r\n...two\r\n\r\nlast\r\n.\r\n250 OK\r\n',
    );
    expect(replies).toEqual([
      {
        status: 250,
        isAsync: false,
        lines: [
          {
            status: 250,
            text: 'config-text=',
            data: 'ControlPort 9051\n.leading dot\n..two\n\nlast',
          },
          { status: 250, text: 'OK' },
        ],
      },
    ]);
  });

  it('parses an empty data block', () => {
    const [reply] = parseAll('250+x=\r\n.\r\n250 OK\r\n');
    expect(reply!.lines[0]).toEqual({ status: 250, text: 'x=', data: '' });
  });

  it('marks 650 replies as async and keeps them apart from a multi-line answer they interrupt', () => {
    const replies = parseAll(
      '250-ServiceID=abc\r\n' +
        '650 HS_DESC UPLOAD abc UNKNOWN $AAAA~relay1\r\n' +
        '250-PrivateKey=ED25519-V3:xyz\r\n' +
        '650-CONF_CHANGED\r\n650-SocksPort=0\r\n' +
        '250 OK\r\n' +
        '650 OK\r\n',
    );
    expect(replies.map((r) => [r.status, r.isAsync, r.lines.map((l) => l.text)])).toEqual([
      [650, true, ['HS_DESC UPLOAD abc UNKNOWN $AAAA~relay1']],
      [250, false, ['ServiceID=abc', 'PrivateKey=ED25519-V3:xyz', 'OK']],
      [650, true, ['CONF_CHANGED', 'SocksPort=0', 'OK']],
    ]);
  });

  it('accepts bare LF line endings', () => {
    expect(parseAll('250-a\n250 OK\n')[0]!.lines.map((l) => l.text)).toEqual(['a', 'OK']);
  });

  it('keeps an unfinished reply until its end line arrives', () => {
    const parser = new ControlReplyParser();
    expect(parser.push(enc('250-a\r\n250 O'))).toEqual([]);
    expect(parser.hasPartial).toBe(true);
    expect(parser.push(enc('K\r'))).toEqual([]);
    expect(parser.push(enc('\n'))).toHaveLength(1);
    expect(parser.hasPartial).toBe(false);
  });

  it('uses the end line status and keeps each line status', () => {
    const [reply] = parseAll('250-a\r\n552 Unrecognized key "b"\r\n');
    expect(reply!.status).toBe(552);
    expect(reply!.lines.map((l) => l.status)).toEqual([250, 552]);
  });

  it('decodes UTF-8 text', () => {
    expect(parseAll('250 caf\u00e9 \u2713\r\n')[0]!.lines[0]!.text).toBe('caf\u00e9 \u2713');
  });

  it.each([
    ['no status', 'OK\r\n'],
    ['two-digit status', '25 OK\r\n'],
    ['bad separator', '250_OK\r\n'],
    ['empty line', '\r\n'],
    ['letters', 'abc OK\r\n'],
  ])('rejects a malformed line (%s) with ERR_TOR_CONTROL, and stays failed', (_name, text) => {
    const parser = new ControlReplyParser();
    expectCode(() => parser.push(enc(text)), 'ERR_TOR_CONTROL');
    expectCode(() => parser.push(enc('250 OK\r\n')), 'ERR_TOR_CONTROL');
  });

  it('rejects a line longer than the cap before it ends', () => {
    const parser = new ControlReplyParser();
    const chunk = new Uint8Array(64 * 1024).fill(0x41);
    chunk.set(enc('250 '));
    expectCode(() => {
      for (let sent = 0; sent <= MAX_REPLY_LINE_BYTES + chunk.length; sent += chunk.length) {
        parser.push(chunk);
      }
    }, 'ERR_TOR_CONTROL');
  });

  it('accepts a line of exactly the cap', () => {
    const line = `250 ${'x'.repeat(MAX_REPLY_LINE_BYTES - 4)}\r\n`;
    const [reply] = parseAll(line);
    expect(reply!.lines[0]!.text.length).toBe(MAX_REPLY_LINE_BYTES - 4);
    expectCode(
      () => parseAll(`250 ${'x'.repeat(MAX_REPLY_LINE_BYTES - 3)}\r\n`),
      'ERR_TOR_CONTROL',
    );
  });

  it('does not keep a reference to the caller buffer', () => {
    const parser = new ControlReplyParser();
    const buf = enc('250 AB');
    parser.push(buf);
    buf.fill(0x5a);
    expect(parser.push(enc('C\r\n'))[0]!.lines[0]!.text).toBe('ABC');
  });

  // A reply stream holding every shape, and the replies it must yield.
  const stream =
    '250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n' +
    '650 HS_DESC UPLOADED aaaa UNKNOWN $BB~r\r\n' +
    '250+config-text=\r\n..x\r\ny\r\n.\r\n250 OK\r\n' +
    '250-ServiceID=s\r\n650 STATUS_CLIENT NOTICE X\r\n250 OK\r\n' +
    '552 Unrecognized key\n' +
    '650-CONF_CHANGED\r\n650-A=1\r\n650 OK\r\n' +
    '250 caf\u00e9\r\n';
  const bytes = enc(stream);
  const expected = new ControlReplyParser().push(bytes);

  it('yields the expected replies for the whole stream', () => {
    expect(expected.map((r) => r.status)).toEqual([250, 650, 250, 650, 250, 552, 650, 250]);
    expect(expected[2]!.lines[0]!.data).toBe('.x\ny');
  });

  it('yields the same replies when split at every single byte boundary', () => {
    for (let cut = 0; cut <= bytes.length; cut += 1) {
      const parser = new ControlReplyParser();
      const got = [...parser.push(bytes.subarray(0, cut)), ...parser.push(bytes.subarray(cut))];
      expect(got).toEqual(expected);
    }
  });

  it('yields the same replies fed one byte at a time', () => {
    const parser = new ControlReplyParser();
    const got: ControlReply[] = [];
    for (const b of bytes) got.push(...parser.push(Uint8Array.of(b)));
    expect(got).toEqual(expected);
  });

  it('property: any chunking of the stream yields the same replies', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 40 }),
        (cuts) => {
          const sorted = [...cuts].sort((a, b) => a - b);
          const parser = new ControlReplyParser();
          const got: ControlReply[] = [];
          let at = 0;
          for (const cut of [...sorted, bytes.length]) {
            got.push(...parser.push(bytes.subarray(at, cut)));
            at = cut;
          }
          expect(got).toEqual(expected);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('property: random bytes yield replies or ERR_TOR_CONTROL, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (random) => {
        try {
          new ControlReplyParser().push(random);
        } catch (err) {
          expect(hasCode(err, 'ERR_TOR_CONTROL')).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('parseKeyValues', () => {
  it('reads bare and quoted values and skips bare words', () => {
    const kv = parseKeyValues(
      'AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/run/tor/control.authcookie"',
    );
    expect([...kv]).toEqual([
      ['METHODS', 'COOKIE,SAFECOOKIE'],
      ['COOKIEFILE', '/run/tor/control.authcookie'],
    ]);
  });

  it('unescapes quoted strings (QuotedString and the CString escapes of control-spec §2.1.1)', () => {
    const kv = parseKeyValues(
      'A="quoted \\" string" B="back\\\\slash" C="tab\\there" D="\\303\\251t\\351" E="" F=x=y G="a b"',
    );
    expect(kv.get('A')).toBe('quoted " string');
    expect(kv.get('B')).toBe('back\\slash');
    expect(kv.get('C')).toBe('tab\there');
    expect(kv.get('D')).toBe('\u00e9t\ufffd');
    expect(kv.get('E')).toBe('');
    expect(kv.get('F')).toBe('x=y');
    expect(kv.get('G')).toBe('a b');
  });

  it('reads AUTHCHALLENGE and ServiceID lines', () => {
    const kv = parseKeyValues(
      `AUTHCHALLENGE SERVERHASH=${'A'.repeat(64)} SERVERNONCE=${'b'.repeat(64)}`,
    );
    expect(kv.get('SERVERHASH')).toBe('A'.repeat(64));
    expect(kv.get('SERVERNONCE')).toBe('b'.repeat(64));
    expect(parseKeyValues('ServiceID=abc').get('ServiceID')).toBe('abc');
  });

  it('rejects an unterminated quoted string', () => {
    expectCode(() => parseKeyValues('A="never ends'), 'ERR_TOR_CONTROL');
    expectCode(() => parseKeyValues('A="ends in backslash\\'), 'ERR_TOR_CONTROL');
  });

  it('does not let a key named __proto__ touch prototypes', () => {
    const kv = parseKeyValues('__proto__=x');
    expect(kv.get('__proto__')).toBe('x');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});

describe('quoteString', () => {
  it('quotes and escapes backslash and double quote', () => {
    expect(quoteString('pa"ss\\word')).toBe('"pa\\"ss\\\\word"');
    expect(quoteString('')).toBe('""');
  });

  it('round-trips through parseKeyValues', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme' }).filter((s) => !/[\r\n\0]/.test(s)),
        (s) => {
          expect(parseKeyValues(`K=${quoteString(s)}`).get('K')).toBe(
            // A backslash before n, t, r or a digit is re-read as a C escape (control-spec §2.1.1),
            // but quoteString escapes every backslash, so the round trip is exact.
            s,
          );
        },
      ),
    );
  });

  it.each(['a\rb', 'a\nb', 'a\0b'])('refuses CR, LF and NUL (%j)', (s) => {
    expectCode(() => quoteString(s), 'ERR_TOR_COMMAND');
  });
});
