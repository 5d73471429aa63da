import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import { describe, expect, it } from 'vitest';
import { HOSTID_ONION } from '../../src/message/privmsg.js';
import {
  decodeBase64Strict,
  decodeHexStrict,
  parsePublicKeyHex,
  publicKeyHexFromPrivateKey,
  signMessage,
  verifyMessage,
} from '../../src/message/signing.js';
import { hex, thrownCode, vectors } from './fixtures.js';

const { taker, maker } = vectors.keys;
const SECP256K1_ORDER = secp256k1.Point.Fn.ORDER;

const signedVectors = [
  ['fill', taker, vectors.fill.body, vectors.fill.sig_b64],
  ['pubkey', maker, vectors.pubkey.body, vectors.pubkey.sig_b64],
  ['offer_priv', maker, vectors.offer_priv.body, vectors.offer_priv.sig_b64],
  ['auth', taker, vectors.auth.wire_b64, vectors.auth.sig_b64],
] as const;

/** Re-encodes a DER signature with s replaced by n - s (the high-S twin). */
function highSTwin(sigB64: string): string {
  const sig = secp256k1.Signature.fromBytes(base64.decode(sigB64), 'der');
  const twin = new secp256k1.Signature(sig.r, SECP256K1_ORDER - sig.s);
  expect(twin.hasHighS()).toBe(true);
  return base64.encode(twin.toBytes('der'));
}

describe('signMessage', () => {
  it.each(signedVectors)('reproduces the %s signature byte for byte', (_n, key, body, sig) => {
    expect(signMessage(hex(key.priv), body + HOSTID_ONION)).toBe(sig);
  });

  it('produces the DER of the fill vector', () => {
    const sig = signMessage(hex(taker.priv), vectors.fill.signed_string);
    expect(bytesToHex(base64.decode(sig))).toBe(vectors.fill.sig_der_hex);
  });

  it.each([
    ['all zero', new Uint8Array(32)],
    ['31 bytes', new Uint8Array(31).fill(1)],
    ['the group order', hex(SECP256K1_ORDER.toString(16))],
  ])('rejects an invalid private key (%s) with ERR_CRYPTO', (_name, key) => {
    expect(thrownCode(() => signMessage(key, 'x'))).toBe('ERR_CRYPTO');
    expect(thrownCode(() => publicKeyHexFromPrivateKey(key))).toBe('ERR_CRYPTO');
  });
});

describe('verifyMessage', () => {
  it.each(signedVectors)('accepts the %s vector', (_n, key, body, sig) => {
    expect(verifyMessage(key.pub, sig, body + HOSTID_ONION)).toBe(true);
  });

  it('rejects another message, another key, and the body without hostid', () => {
    const { body, sig_b64 } = vectors.fill;
    expect(verifyMessage(taker.pub, sig_b64, body + 'onion-networK')).toBe(false);
    expect(verifyMessage(taker.pub, sig_b64, body)).toBe(false);
    expect(verifyMessage(maker.pub, sig_b64, body + HOSTID_ONION)).toBe(false);
  });

  it('rejects the signature with any single byte flipped', () => {
    const der = base64.decode(vectors.fill.sig_b64);
    for (let i = 0; i < der.length; i++) {
      const bad = Uint8Array.from(der);
      bad[i] = (bad[i] ?? 0) ^ 0x01;
      expect(verifyMessage(taker.pub, base64.encode(bad), vectors.fill.signed_string)).toBe(false);
    }
  });

  it('accepts the high-S twin by default (python-bitcointx normalizes) but not with requireLowS', () => {
    const twin = highSTwin(vectors.fill.sig_b64);
    expect(verifyMessage(taker.pub, twin, vectors.fill.signed_string)).toBe(true);
    expect(verifyMessage(taker.pub, twin, vectors.fill.signed_string, { requireLowS: true })).toBe(
      false,
    );
    expect(
      verifyMessage(taker.pub, vectors.fill.sig_b64, vectors.fill.signed_string, {
        requireLowS: true,
      }),
    ).toBe(true);
  });

  it('accepts only strict DER', () => {
    const der = base64.decode(vectors.fill.sig_b64);
    const sig = secp256k1.Signature.fromBytes(der, 'der');
    // r with a superfluous leading zero byte (BER, not DER).
    const r = hex(sig.r.toString(16).padStart(64, '0'));
    const s = hex(sig.s.toString(16).padStart(64, '0'));
    const padded = Uint8Array.from([
      0x30,
      4 + r.length + 1 + s.length,
      0x02,
      r.length + 1,
      0x00,
      ...r,
      0x02,
      s.length,
      ...s,
    ]);
    expect(verifyMessage(taker.pub, base64.encode(padded), vectors.fill.signed_string)).toBe(false);
    // Compact r‖s instead of DER.
    expect(
      verifyMessage(taker.pub, base64.encode(sig.toBytes('compact')), vectors.fill.signed_string),
    ).toBe(false);
    // Trailing byte after the DER sequence.
    expect(
      verifyMessage(
        taker.pub,
        base64.encode(Uint8Array.from([...der, 0x01])),
        vectors.fill.signed_string,
      ),
    ).toBe(false);
  });

  it('never throws on garbage', () => {
    const cases: [string, string][] = [
      ['', ''],
      [taker.pub, ''],
      [taker.pub, 'not base64!'],
      [taker.pub, 'MEQ='],
      ['zz', vectors.fill.sig_b64],
      ['02' + 'ff'.repeat(32), vectors.fill.sig_b64],
      ['05' + taker.pub.slice(2), vectors.fill.sig_b64],
      [taker.pub + '00', vectors.fill.sig_b64],
    ];
    for (const [pub, sig] of cases) {
      expect(verifyMessage(pub, sig, vectors.fill.signed_string)).toBe(false);
    }
  });

  it('accepts uppercase pubkey hex (the nick check rejects it) and an uncompressed key', () => {
    const { signed_string, sig_b64 } = vectors.fill;
    expect(verifyMessage(taker.pub.toUpperCase(), sig_b64, signed_string)).toBe(true);
    const uncompressed = bytesToHex(secp256k1.getPublicKey(hex(taker.priv), false));
    expect(verifyMessage(uncompressed, sig_b64, signed_string)).toBe(true);
  });
});

describe('strict decoders', () => {
  it('decodeHexStrict takes even-length hex of either case and nothing else', () => {
    expect(decodeHexStrict('00aAfF')).toEqual(Uint8Array.of(0, 0xaa, 0xff));
    expect(decodeHexStrict('')).toEqual(new Uint8Array(0));
    for (const bad of ['0', '0x00', 'gg', '00 ', ' 00'])
      expect(decodeHexStrict(bad)).toBeUndefined();
  });

  it('decodeBase64Strict takes canonical padded base64 only', () => {
    expect(decodeBase64Strict('QUJD')).toEqual(Uint8Array.of(65, 66, 67));
    expect(decodeBase64Strict('QQ==')).toEqual(Uint8Array.of(65));
    for (const bad of ['QQ', 'QR==', 'QUJD\n', 'QU JD', 'QUJD=', '-_==']) {
      expect(decodeBase64Strict(bad)).toBeUndefined();
    }
  });

  it('parsePublicKeyHex checks shape and curve membership', () => {
    expect(parsePublicKeyHex(taker.pub)).toEqual(hex(taker.pub));
    expect(parsePublicKeyHex('04' + taker.pub.slice(2))).toBeUndefined();
    expect(parsePublicKeyHex('02' + '00'.repeat(32))).toBeUndefined();
  });
});
