import { createHash } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { base64 } from '@scure/base';
import { describe, expect, it } from 'vitest';
import { createNickIdentity } from '../../src/message/nick.js';
import {
  buildNickAuthChallengeLine,
  buildNickAuthProofLine,
  buildNickAuthResultLine,
  createNickAuthChallenge,
  directoryIdForEndpoint,
  handshakeLineSha256Hex,
  nickAuthSignedString,
  parseNickAuthChallengeLine,
  parseNickAuthProofLine,
  parseNickAuthResultLine,
  signNickAuth,
  verifyNickAuth,
  type NickAuthResultCode,
} from '../../src/message/nick-auth.js';
import { signMessage, verifyMessage } from '../../src/message/signing.js';
import { hex, thrownCode, vectors } from './fixtures.js';

const { taker, maker } = vectors.keys;
const takerId = createNickIdentity(hex(taker.priv));
const ONION = 'a'.repeat(56) + '.onion';
const DIRECTORY_ID = `${ONION}:5222`;
const CHALLENGE = '0123456789abcdef'.repeat(4);
const HS_LINE = vectors.client_hs_line;

describe('803 challenge line', () => {
  it('builds compact JSON with keys in order and parses it back', () => {
    const line = buildNickAuthChallengeLine({ challenge: CHALLENGE, directoryId: DIRECTORY_ID });
    expect(line).toBe(`{"challenge":"${CHALLENGE}","directory-id":"${DIRECTORY_ID}"}`);
    expect(parseNickAuthChallengeLine(line)).toEqual({
      challenge: CHALLENGE,
      directoryId: DIRECTORY_ID,
    });
  });

  it('accepts whitespace and escapes as JSON allows', () => {
    const line = ` { "directory-id" : "${DIRECTORY_ID}" ,\n "chall\\u0065nge": "${CHALLENGE}" } `;
    expect(parseNickAuthChallengeLine(line)).toEqual({
      challenge: CHALLENGE,
      directoryId: DIRECTORY_ID,
    });
  });

  it.each([
    ['duplicate key', `{"challenge":"${CHALLENGE}","challenge":"${CHALLENGE}","directory-id":"x"}`],
    [
      'duplicate key after unescaping',
      `{"challenge":"${CHALLENGE}","\\u0063hallenge":"${CHALLENGE}","directory-id":"x"}`,
    ],
    ['unknown field', `{"challenge":"${CHALLENGE}","directory-id":"x","kind":"challenge"}`],
    ['missing field', `{"challenge":"${CHALLENGE}"}`],
    ['uppercase challenge', `{"challenge":"${CHALLENGE.toUpperCase()}","directory-id":"x"}`],
    ['short challenge', `{"challenge":"${CHALLENGE.slice(1)}","directory-id":"x"}`],
    ['number challenge', `{"challenge":1,"directory-id":"x"}`],
    ['uppercase directory-id', `{"challenge":"${CHALLENGE}","directory-id":"X"}`],
    ['empty directory-id', `{"challenge":"${CHALLENGE}","directory-id":""}`],
    ['nested value', `{"challenge":"${CHALLENGE}","directory-id":["x"]}`],
    ['trailing garbage', `{"challenge":"${CHALLENGE}","directory-id":"x"}x`],
    ['trailing comma', `{"challenge":"${CHALLENGE}","directory-id":"x",}`],
    ['NaN', `{"challenge":"${CHALLENGE}","directory-id":NaN}`],
    ['array', `[]`],
    ['not JSON', `challenge`],
    ['empty', ``],
  ])('rejects a %s', (_name, line) => {
    expect(parseNickAuthChallengeLine(line)).toBeUndefined();
  });

  it('refuses to build an invalid challenge', () => {
    expect(
      thrownCode(() => buildNickAuthChallengeLine({ challenge: 'ab', directoryId: 'x' })),
    ).toBe('ERR_PROTOCOL');
    expect(
      thrownCode(() => buildNickAuthChallengeLine({ challenge: CHALLENGE, directoryId: 'A' })),
    ).toBe('ERR_PROTOCOL');
  });

  it('createNickAuthChallenge draws 32 fresh random bytes', () => {
    const a = createNickAuthChallenge(DIRECTORY_ID);
    const b = createNickAuthChallenge(DIRECTORY_ID);
    expect(a.challenge).toMatch(/^[0-9a-f]{64}$/);
    expect(a.challenge).not.toBe(b.challenge);
    expect(a.directoryId).toBe(DIRECTORY_ID);
  });
});

describe('signed string (docs/protocol.md §9.6)', () => {
  it('is nick-auth|challenge|id|sha256(793 line)|nick|pubkey + nick-auth-v1', () => {
    const digest = createHash('sha256').update(HS_LINE, 'utf8').digest('hex');
    expect(handshakeLineSha256Hex(HS_LINE)).toBe(digest);
    expect(nickAuthSignedString(CHALLENGE, DIRECTORY_ID, HS_LINE, taker.nick, taker.pub)).toBe(
      `nick-auth|${CHALLENGE}|${DIRECTORY_ID}|${digest}|${taker.nick}|${taker.pub}nick-auth-v1`,
    );
  });

  it.each([
    ['challenge', () => nickAuthSignedString('AB', DIRECTORY_ID, HS_LINE, taker.nick, taker.pub)],
    ['directory-id', () => nickAuthSignedString(CHALLENGE, 'Bad', HS_LINE, taker.nick, taker.pub)],
    ['nick', () => nickAuthSignedString(CHALLENGE, DIRECTORY_ID, HS_LINE, 'J5short', taker.pub)],
    [
      'pubkey',
      () =>
        nickAuthSignedString(CHALLENGE, DIRECTORY_ID, HS_LINE, taker.nick, taker.pub.toUpperCase()),
    ],
  ])('throws ERR_PROTOCOL for an invalid %s', (_name, fn) => {
    expect(thrownCode(fn)).toBe('ERR_PROTOCOL');
  });
});

describe('805 proof: sign, build, parse, verify', () => {
  const proof = signNickAuth(takerId, CHALLENGE, DIRECTORY_ID, HS_LINE);
  const proofLine = buildNickAuthProofLine(proof);

  it('signs the signed string with the nick key', () => {
    expect(proof.pubkey).toBe(taker.pub);
    const message = nickAuthSignedString(CHALLENGE, DIRECTORY_ID, HS_LINE, taker.nick, taker.pub);
    expect(proof.signature).toBe(signMessage(hex(taker.priv), message));
    expect(verifyMessage(taker.pub, proof.signature, message)).toBe(true);
  });

  it('builds compact JSON and parses it back', () => {
    expect(proofLine).toBe(`{"pubkey":"${taker.pub}","signature":"${proof.signature}"}`);
    expect(parseNickAuthProofLine(proofLine)).toEqual(proof);
  });

  it('verifies as ok', () => {
    expect(verifyNickAuth(proofLine, CHALLENGE, DIRECTORY_ID, HS_LINE, taker.nick)).toBe('ok');
  });

  it('is invalid for another challenge, directory, 793 line or nick', () => {
    const other = 'f'.repeat(64);
    expect(verifyNickAuth(proofLine, other, DIRECTORY_ID, HS_LINE, taker.nick)).toBe('invalid');
    expect(verifyNickAuth(proofLine, CHALLENGE, `${ONION}:5223`, HS_LINE, taker.nick)).toBe(
      'invalid',
    );
    // The same handshake re-serialized compactly is a different string: the hash binds bytes.
    const compact = JSON.stringify(JSON.parse(HS_LINE));
    expect(verifyNickAuth(proofLine, CHALLENGE, DIRECTORY_ID, compact, taker.nick)).toBe('invalid');
    expect(verifyNickAuth(proofLine, CHALLENGE, DIRECTORY_ID, HS_LINE, maker.nick)).toBe('invalid');
    expect(verifyNickAuth(proofLine, CHALLENGE, 'Bad', HS_LINE, taker.nick)).toBe('invalid');
  });

  it('is invalid when another key signed for this nick', () => {
    const makerId = createNickIdentity(hex(maker.priv));
    const stolen = buildNickAuthProofLine({
      pubkey: taker.pub,
      signature: signNickAuth(makerId, CHALLENGE, DIRECTORY_ID, HS_LINE).signature,
    });
    expect(verifyNickAuth(stolen, CHALLENGE, DIRECTORY_ID, HS_LINE, taker.nick)).toBe('invalid');
  });

  it('is invalid for the high-S twin of a good signature (ng verifies without normalizing)', () => {
    const sig = secp256k1.Signature.fromBytes(base64.decode(proof.signature), 'der');
    const twin = new secp256k1.Signature(sig.r, secp256k1.Point.Fn.ORDER - sig.s);
    const line = JSON.stringify({
      pubkey: taker.pub,
      signature: base64.encode(twin.toBytes('der')),
    });
    expect(parseNickAuthProofLine(line)).toBeDefined();
    expect(verifyNickAuth(line, CHALLENGE, DIRECTORY_ID, HS_LINE, taker.nick)).toBe('invalid');
  });

  it.each([
    ['not JSON', 'nope'],
    ['uppercase pubkey', JSON.stringify({ pubkey: taker.pub.toUpperCase(), signature: 'x' })],
    [
      'uncompressed-looking pubkey',
      JSON.stringify({ pubkey: '04' + taker.pub.slice(2), signature: proof.signature }),
    ],
    [
      'pubkey off the curve',
      JSON.stringify({ pubkey: '02' + '00'.repeat(32), signature: proof.signature }),
    ],
    ['unknown field', proofLine.replace('}', ',"kind":"proof"}')],
    ['duplicate key', proofLine.replace('}', `,"pubkey":"${taker.pub}"}`)],
    [
      'non-canonical base64',
      JSON.stringify({ pubkey: taker.pub, signature: proof.signature.slice(0, -2) }),
    ],
    [
      'signature that is not DER',
      JSON.stringify({ pubkey: taker.pub, signature: base64.encode(new Uint8Array(64).fill(1)) }),
    ],
    ['boolean signature', JSON.stringify({ pubkey: taker.pub, signature: true })],
  ])('is malformed with a %s', (_name, line) => {
    expect(parseNickAuthProofLine(line)).toBeUndefined();
    expect(verifyNickAuth(line, CHALLENGE, DIRECTORY_ID, HS_LINE, taker.nick)).toBe('malformed');
  });

  it('refuses to build a proof with a bad pubkey or signature', () => {
    expect(
      thrownCode(() =>
        buildNickAuthProofLine({ pubkey: taker.pub.toUpperCase(), signature: proof.signature }),
      ),
    ).toBe('ERR_PROTOCOL');
    expect(thrownCode(() => buildNickAuthProofLine({ pubkey: taker.pub, signature: 'AAAA' }))).toBe(
      'ERR_PROTOCOL',
    );
  });
});

describe('807 result line', () => {
  const codes: NickAuthResultCode[] = ['ok', 'malformed', 'expired', 'invalid', 'policy'];

  it.each(codes)('builds and parses %s', (code) => {
    const line = buildNickAuthResultLine(code);
    expect(line).toBe(`{"code":"${code}","verified":${String(code === 'ok')}}`);
    expect(parseNickAuthResultLine(line)).toEqual({ code, verified: code === 'ok' });
  });

  it.each([
    ['verified true with a failure code', '{"code":"invalid","verified":true}'],
    ['verified false with ok', '{"code":"ok","verified":false}'],
    ['verified as a number', '{"code":"ok","verified":1}'],
    ['verified as a string', '{"code":"ok","verified":"true"}'],
    ['unknown code', '{"code":"maybe","verified":false}'],
    ['extra field', '{"code":"ok","verified":true,"x":null}'],
    ['duplicate key', '{"code":"ok","code":"ok","verified":true}'],
    ['missing field', '{"code":"ok"}'],
  ])('rejects %s', (_name, line) => {
    expect(parseNickAuthResultLine(line)).toBeUndefined();
  });
});

describe('directoryIdForEndpoint', () => {
  it('lowercases a v3 onion and drops a trailing dot', () => {
    expect(directoryIdForEndpoint(ONION.toUpperCase(), 5222)).toBe(DIRECTORY_ID);
    expect(directoryIdForEndpoint(`${ONION}.`, 5222)).toBe(DIRECTORY_ID);
  });

  it.each([
    ['a non-onion host', '127.0.0.1', 5222],
    ['a short onion', 'abc.onion', 5222],
    ['port 0', ONION, 0],
    ['port 65536', ONION, 65536],
    ['a host with spaces', ` ${ONION}`, 5222],
  ])('needs an explicit id for %s', (_name, host, port) => {
    expect(directoryIdForEndpoint(host, port)).toBeUndefined();
  });
});
