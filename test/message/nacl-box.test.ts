import { bytesToHex } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { isEncryptedCommand } from '../../src/message/commands.js';
import {
  decryptFromWire,
  encryptToWire,
  generateBoxKeyPair,
  NACL_NONCE_BYTES,
  NACL_PUBLIC_KEY_BYTES,
  parseBoxPublicKeyHex,
  wipe,
} from '../../src/message/nacl-box.js';
import { parseChannelLine, verifyPrivmsg } from '../../src/message/privmsg.js';
import { hex, thrownCode, vectors } from './fixtures.js';

const { nacl: keys, auth } = vectors;
const takerSk = hex(keys.taker_sk);
const takerPk = hex(keys.taker_pk);
const makerSk = hex(keys.maker_sk);
const makerPk = hex(keys.maker_pk);

describe('NaCl box vector (docs/protocol.md §7, §11.7)', () => {
  it('has the key pairs of vectors.json', () => {
    expect(NACL_PUBLIC_KEY_BYTES).toBe(32);
    expect(NACL_NONCE_BYTES).toBe(24);
    expect(bytesToHex(nacl.box.keyPair.fromSecretKey(takerSk).publicKey)).toBe(keys.taker_pk);
    expect(bytesToHex(nacl.box.keyPair.fromSecretKey(makerSk).publicKey)).toBe(keys.maker_pk);
  });

  it('nacl.box.before gives the beforenm shared key from either side', () => {
    expect(bytesToHex(nacl.box.before(makerPk, takerSk))).toBe(keys.beforenm);
    expect(bytesToHex(nacl.box.before(takerPk, makerSk))).toBe(keys.beforenm);
  });

  it('encryptToWire with the fixed nonce reproduces wire_b64 and the MAC', () => {
    const wire = encryptToWire(auth.plaintext, makerPk, takerSk, hex(auth.nonce));
    expect(wire).toBe(auth.wire_b64);
    const bytes = base64.decode(wire);
    expect(bytes.length).toBe(24 + 16 + auth.ct_len);
    expect(bytesToHex(bytes.subarray(0, 24))).toBe(auth.nonce);
    expect(bytesToHex(bytes.subarray(24, 40))).toBe(auth.mac);
  });

  it('decryptFromWire reverses it on the maker side and on the taker side', () => {
    expect(decryptFromWire(auth.wire_b64, takerPk, makerSk)).toBe(auth.plaintext);
    expect(decryptFromWire(auth.wire_b64, makerPk, takerSk)).toBe(auth.plaintext);
  });

  it('the auth line verifies and carries the wire payload as its body', () => {
    const line = parseChannelLine(auth.line);
    expect(line).toBeDefined();
    if (line === undefined) return;
    const result = verifyPrivmsg(line.from, line.message);
    expect(result).toMatchObject({ ok: true, cmd: 'auth', body: auth.wire_b64 });
    expect(isEncryptedCommand('auth')).toBe(true);
    if (result.ok) expect(decryptFromWire(result.body, takerPk, makerSk)).toBe(auth.plaintext);
  });
});

describe('encryptToWire / decryptFromWire', () => {
  it('uses a fresh random nonce each time', () => {
    const a = encryptToWire('hello', makerPk, takerSk);
    const b = encryptToWire('hello', makerPk, takerSk);
    expect(a).not.toBe(b);
    expect(decryptFromWire(a, takerPk, makerSk)).toBe('hello');
    expect(decryptFromWire(b, takerPk, makerSk)).toBe('hello');
  });

  it('round-trips UTF-8 and the empty string (40-byte payload)', () => {
    const pairA = generateBoxKeyPair();
    const pairB = generateBoxKeyPair();
    expect(pairA.publicKey).toHaveLength(32);
    expect(pairA.secretKey).toHaveLength(32);
    for (const text of ['', 'päivää ☃', 'x'.repeat(5000)]) {
      const wire = encryptToWire(text, pairB.publicKey, pairA.secretKey);
      expect(decryptFromWire(wire, pairA.publicKey, pairB.secretKey)).toBe(text);
    }
    expect(base64.decode(encryptToWire('', pairB.publicKey, pairA.secretKey))).toHaveLength(40);
  });

  it('keeps a leading U+FEFF, as Python bytes.decode("utf-8") does', () => {
    // The text a peer boxed is the text it meant; a BOM is a character like any other there.
    const wire = encryptToWire('\uFEFFx', makerPk, takerSk);
    expect(decryptFromWire(wire, takerPk, makerSk)).toBe('\uFEFFx');
  });

  it('throws ERR_CRYPTO for a wrong key', () => {
    const stranger = generateBoxKeyPair();
    expect(thrownCode(() => decryptFromWire(auth.wire_b64, stranger.publicKey, makerSk))).toBe(
      'ERR_CRYPTO',
    );
    expect(thrownCode(() => decryptFromWire(auth.wire_b64, takerPk, stranger.secretKey))).toBe(
      'ERR_CRYPTO',
    );
  });

  it('throws ERR_CRYPTO for a tampered nonce, MAC or ciphertext byte', () => {
    const bytes = base64.decode(auth.wire_b64);
    for (const index of [0, 23, 24, 39, 40, bytes.length - 1]) {
      const bad = Uint8Array.from(bytes);
      bad[index] = (bad[index] ?? 0) ^ 0x01;
      expect(thrownCode(() => decryptFromWire(base64.encode(bad), takerPk, makerSk))).toBe(
        'ERR_CRYPTO',
      );
    }
  });

  it.each([
    ['bad base64', 'not base64!'],
    ['unpadded base64', auth.wire_b64.replace(/=+$/, '')],
    ['too short', base64.encode(new Uint8Array(39))],
    ['empty', ''],
  ])('throws ERR_CRYPTO for %s', (_name, wire) => {
    expect(thrownCode(() => decryptFromWire(wire, takerPk, makerSk))).toBe('ERR_CRYPTO');
  });

  it('throws ERR_CRYPTO for keys or nonces of the wrong length', () => {
    const short = new Uint8Array(31);
    for (const fn of [
      () => encryptToWire('x', short, takerSk),
      () => encryptToWire('x', makerPk, short),
      () => encryptToWire('x', makerPk, takerSk, new Uint8Array(23)),
      () => decryptFromWire(auth.wire_b64, short, makerSk),
    ]) {
      expect(thrownCode(fn)).toBe('ERR_CRYPTO');
    }
  });
});

describe('parseBoxPublicKeyHex', () => {
  it('accepts exactly 64 hex characters of either case', () => {
    expect(parseBoxPublicKeyHex(keys.maker_pk)).toEqual(makerPk);
    expect(parseBoxPublicKeyHex(keys.maker_pk.toUpperCase())).toEqual(makerPk);
  });

  it.each([
    ['62 characters', keys.maker_pk.slice(2)],
    ['66 characters', keys.maker_pk + '00'],
    ['non-hex', 'g' + keys.maker_pk.slice(1)],
    ['empty', ''],
  ])('throws ERR_CRYPTO for %s', (_name, text) => {
    expect(thrownCode(() => parseBoxPublicKeyHex(text))).toBe('ERR_CRYPTO');
    expect(() => parseBoxPublicKeyHex(text)).toThrow('Invalid nacl pubkey');
  });
});

describe('wipe', () => {
  it('zeroes the buffer in place', () => {
    const pair = generateBoxKeyPair();
    wipe(pair.secretKey);
    expect(pair.secretKey).toEqual(new Uint8Array(32));
  });
});
