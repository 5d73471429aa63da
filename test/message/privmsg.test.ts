import { base64 } from '@scure/base';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PLAINTEXT_COMMANDS, splitCommands } from '../../src/message/commands.js';
import { createNickIdentity } from '../../src/message/nick.js';
import {
  formatPubmsgLine,
  HOSTID_ONION,
  parseChannelLine,
  PUBLIC_NICK,
  signPrivmsg,
  verifyPrivmsg,
  type ChannelLine,
} from '../../src/message/privmsg.js';
import { hex, thrownCode, transcriptPrivmsgLines, vectors, type SignedVector } from './fixtures.js';

const { taker, maker } = vectors.keys;
const takerId = createNickIdentity(hex(taker.priv));
const makerId = createNickIdentity(hex(maker.priv));

const signedVectors: [string, SignedVector, string, string, string][] = [
  ['fill', vectors.fill, 'fill', taker.nick, maker.nick],
  ['pubkey', vectors.pubkey, 'pubkey', maker.nick, taker.nick],
  ['offer_priv', vectors.offer_priv, 'sw0reloffer', maker.nick, taker.nick],
  ['auth', { ...vectors.auth, body: vectors.auth.wire_b64 }, 'auth', taker.nick, maker.nick],
];

function parsed(line: string): ChannelLine {
  const result = parseChannelLine(line);
  if (result === undefined) throw new Error(`unparseable line ${line}`);
  return result;
}

/** Replaces the token at `index` (negative counts from the end) of a privmsg line. */
function replaceToken(line: string, index: number, value: string): string {
  const tokens = line.split(' ');
  tokens[index < 0 ? tokens.length + index : index] = value;
  return tokens.join(' ');
}

describe('parseChannelLine (docs/protocol.md §4.1)', () => {
  it('splits a privmsg into from, to and message', () => {
    expect(parseChannelLine(vectors.fill.line)).toEqual({
      from: taker.nick,
      to: maker.nick,
      message: vectors.fill.line.slice(taker.nick.length + maker.nick.length + 2 - 1),
    });
    expect(parsed(vectors.fill.line).message.startsWith('!fill 0 1000000 ')).toBe(true);
  });

  it('rejoins further ! in the payload', () => {
    expect(parseChannelLine('A!B!x 1!tbond y!z')).toEqual({
      from: 'A',
      to: 'B',
      message: '!x 1!tbond y!z',
    });
    expect(parseChannelLine('A!PUBLIC!cancel 0!cancel 1')).toEqual({
      from: 'A',
      to: PUBLIC_NICK,
      message: '!cancel 0!cancel 1',
    });
  });

  it.each(['', 'A', 'A!B', '!B!x', 'A!!x', '!!x'])('rejects %j', (line) => {
    expect(parseChannelLine(line)).toBeUndefined();
  });

  it('agrees with the reference receiver: split on "!", rejoin the rest', () => {
    // R: src/jmdaemon/onionmc.py receive_msg, written out as it does it.
    const byReference = (line: string) => {
      const fields = line.split('!');
      if (fields.length < 3 || fields[0] === '' || fields[1] === '') return undefined;
      return { from: fields[0], to: fields[1], message: '!' + fields.slice(2).join('!') };
    };
    fc.assert(
      fc.property(fc.stringMatching(/^[!ab ]{0,12}$/), (line) => {
        expect(parseChannelLine(line)).toEqual(byReference(line));
      }),
      { numRuns: 3_000 },
    );
  });

  it('gives "!" for an empty command part', () => {
    expect(parseChannelLine('A!B!')).toEqual({ from: 'A', to: 'B', message: '!' });
  });
});

describe('formatPubmsgLine (docs/protocol.md §4.1, §11.5)', () => {
  it('reproduces the pubmsg vectors', () => {
    const orderbook = (JSON.parse(vectors.pub_orderbook) as { line: string }).line;
    const offer = (JSON.parse(vectors.pub_offer) as { line: string }).line;
    expect(formatPubmsgLine(taker.nick, '!orderbook')).toBe(orderbook);
    expect(formatPubmsgLine(maker.nick, '!sw0reloffer 0 27300 1000000 0 0.00002')).toBe(offer);
    expect(parseChannelLine(offer)).toEqual({
      from: maker.nick,
      to: PUBLIC_NICK,
      message: '!sw0reloffer 0 27300 1000000 0 0.00002',
    });
  });

  it('refuses a message without ! and a bad sender', () => {
    expect(thrownCode(() => formatPubmsgLine(taker.nick, 'orderbook'))).toBe('ERR_PROTOCOL');
    expect(thrownCode(() => formatPubmsgLine('', '!orderbook'))).toBe('ERR_PROTOCOL');
    expect(thrownCode(() => formatPubmsgLine('a!b', '!orderbook'))).toBe('ERR_PROTOCOL');
  });
});

describe('signPrivmsg (docs/protocol.md §5.6, §11.6)', () => {
  it.each(signedVectors)('reproduces the whole %s line', (_name, v, cmd, from, to) => {
    const identity = from === taker.nick ? takerId : makerId;
    expect(signPrivmsg(identity, to, cmd, v.body)).toBe(v.line);
  });

  it('refuses a bad recipient, command or empty body', () => {
    expect(thrownCode(() => signPrivmsg(takerId, '', 'fill', 'x'))).toBe('ERR_PROTOCOL');
    expect(thrownCode(() => signPrivmsg(takerId, 'a!b', 'fill', 'x'))).toBe('ERR_PROTOCOL');
    expect(thrownCode(() => signPrivmsg(takerId, maker.nick, '', 'x'))).toBe('ERR_PROTOCOL');
    expect(thrownCode(() => signPrivmsg(takerId, maker.nick, '!fill', 'x'))).toBe('ERR_PROTOCOL');
    expect(thrownCode(() => signPrivmsg(takerId, maker.nick, 'fill x', 'y'))).toBe('ERR_PROTOCOL');
    expect(thrownCode(() => signPrivmsg(takerId, maker.nick, 'fill', ''))).toBe('ERR_PROTOCOL');
  });
});

describe('verifyPrivmsg (docs/protocol.md §5.6)', () => {
  it.each(signedVectors)('accepts the %s line', (_name, v, cmd, from) => {
    const line = parsed(v.line);
    expect(line.from).toBe(from);
    expect(verifyPrivmsg(line.from, line.message)).toEqual({
      ok: true,
      cmd,
      body: v.body,
      publicKeyHex: from === taker.nick ? taker.pub : maker.pub,
      signature: v.sig_b64,
    });
  });

  it('accepts every privmsg of the reference transcript (real reference signatures)', () => {
    const lines = transcriptPrivmsgLines();
    expect(lines).toHaveLength(10);
    const cmds = new Set<string>();
    for (const text of lines) {
      const line = parsed(text);
      const result = verifyPrivmsg(line.from, line.message);
      expect(result, text).toMatchObject({ ok: true });
      if (result.ok) cmds.add(result.cmd);
    }
    expect([...cmds].sort()).toEqual(['fill', 'pubkey']);
  });

  it('rejects a transcript privmsg checked under another hostid', () => {
    const [first] = transcriptPrivmsgLines();
    const line = parsed(first ?? '');
    expect(verifyPrivmsg(line.from, line.message, 'irc.example.org')).toEqual({
      ok: false,
      reason: 'bad-signature',
    });
  });

  it('rejects the pubkey hex in uppercase: the nick check fails (docs/protocol.md §11.8)', () => {
    const upper = replaceToken(vectors.fill.line, -2, taker.pub.toUpperCase());
    const line = parsed(upper);
    expect(verifyPrivmsg(line.from, line.message)).toEqual({ ok: false, reason: 'nick-mismatch' });
  });

  it('rejects a signature with a flipped byte', () => {
    const der = base64.decode(vectors.fill.sig_b64);
    der[10] = (der[10] ?? 0) ^ 0x80;
    const line = parsed(replaceToken(vectors.fill.line, -1, base64.encode(der)));
    expect(verifyPrivmsg(line.from, line.message)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('rejects a changed body', () => {
    const line = parsed(replaceToken(vectors.fill.line, 1, '1'));
    expect(verifyPrivmsg(line.from, line.message)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('rejects a privmsg from a nick that does not match the key', () => {
    const line = parsed(vectors.fill.line);
    expect(verifyPrivmsg(maker.nick, line.message)).toEqual({ ok: false, reason: 'nick-mismatch' });
    expect(verifyPrivmsg(vectors.keys.dir.nick, line.message)).toEqual({
      ok: false,
      reason: 'nick-mismatch',
    });
  });

  it.each(['tbond', 'cancel', 'ping', 'FILL'])('rejects %s as the first command', (cmd) => {
    const line = signPrivmsg(makerId, taker.nick, cmd, '0');
    const p = parsed(line);
    expect(verifyPrivmsg(p.from, p.message)).toEqual({ ok: false, reason: 'command-not-allowed' });
  });

  it.each([
    ['', 'not-a-command'],
    ['!', 'not-a-command'],
    ['fill 0 a b', 'not-a-command'],
    ['!fill', 'signature-missing'],
    ['!fill abc', 'signature-missing'],
    [`!fill ${taker.pub} ${vectors.fill.sig_b64}`, 'empty-body'],
    [`!fill  ${taker.pub} ${vectors.fill.sig_b64}`, 'empty-body'],
    [`!fill 0 0x${taker.pub} ${vectors.fill.sig_b64}`, 'bad-pubkey-encoding'],
    [`!fill 0 ${taker.pub} ${vectors.fill.sig_b64.slice(1)}`, 'bad-signature-encoding'],
    [`!fill 0 ${taker.pub} ${vectors.fill.sig_b64}`, 'bad-signature'],
  ])('rejects %j as %s', (message, reason) => {
    expect(verifyPrivmsg(taker.nick, message)).toEqual({ ok: false, reason });
  });

  it('retries with the hostid lowercased (the reference IRC workaround)', () => {
    const line = parsed(signPrivmsg(takerId, maker.nick, 'fill', 'a b', 'irc.example.org'));
    expect(verifyPrivmsg(line.from, line.message, 'IRC.Example.ORG')).toMatchObject({ ok: true });
    expect(verifyPrivmsg(line.from, line.message)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('keeps further !cmd segments of an offer reply in the body', () => {
    const body = '0 27300 1000000 0 0.00002!tbond QUJD';
    const line = parsed(signPrivmsg(makerId, taker.nick, 'sw0reloffer', body));
    const result = verifyPrivmsg(line.from, line.message);
    expect(result).toMatchObject({ ok: true, cmd: 'sw0reloffer', body });
    expect(splitCommands(`!sw0reloffer ${body}`)).toEqual([
      'sw0reloffer 0 27300 1000000 0 0.00002',
      'tbond QUJD',
    ]);
  });
});

describe('signPrivmsg → parseChannelLine → verifyPrivmsg (property)', () => {
  const printableWithoutBang = fc
    .integer({ min: 0x20, max: 0x7e })
    .filter((c) => c !== 0x21)
    .map((c) => String.fromCharCode(c));
  const identities = [takerId, makerId, createNickIdentity()];

  it('round-trips any non-empty printable ASCII body without !', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: printableWithoutBang, minLength: 1, maxLength: 200 }),
        fc.constantFrom(...identities),
        fc.constantFrom(...PLAINTEXT_COMMANDS, 'auth', 'sig'),
        (body, identity, cmd) => {
          const to = identity === takerId ? maker.nick : taker.nick;
          const line = parseChannelLine(signPrivmsg(identity, to, cmd, body));
          expect(line).toMatchObject({ from: identity.nick, to });
          if (line === undefined) return;
          expect(verifyPrivmsg(line.from, line.message)).toEqual({
            ok: true,
            cmd,
            body,
            publicKeyHex: identity.publicKeyHex,
            signature: identity.sign(body + HOSTID_ONION),
          });
        },
      ),
      { numRuns: 150 },
    );
  });
});
