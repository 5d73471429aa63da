import { inspect } from 'node:util';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { base58 } from '@scure/base';
import { describe, expect, it } from 'vitest';
import {
  createNickIdentity,
  JM_VERSION_DIGIT,
  JOINMARKET_NICK_HEADER,
  NICK_HASH_LENGTH_BYTES,
  NICK_MAX_ENCODED,
  NICK_RE,
  nickFromPublicKey,
  nickMatchesPublicKey,
} from '../../src/message/nick.js';
import { publicKeyHexFromPrivateKey, verifyMessage } from '../../src/message/signing.js';
import { hex, thrownCode, vectors, type KeyVector } from './fixtures.js';

const keyVectors: [string, KeyVector][] = [
  ['k1', vectors.k1],
  ['taker', vectors.keys.taker],
  ['maker', vectors.keys.maker],
  ['dir', vectors.keys.dir],
];

/** A private key (counting up from 2) whose nick hash encodes to fewer than 14 base58 chars. */
function findPaddedKey(): { priv: Uint8Array; pub: string } {
  for (let i = 2; i < 10_000; i++) {
    const priv = new Uint8Array(32);
    new DataView(priv.buffer).setUint32(28, i);
    const pub = publicKeyHexFromPrivateKey(priv);
    const h10 = sha256(utf8ToBytes(pub)).subarray(0, NICK_HASH_LENGTH_BYTES);
    if (base58.encode(h10).length < NICK_MAX_ENCODED) return { priv, pub };
  }
  throw new Error('no short-hash key found');
}

describe('nick constants', () => {
  it('match docs/protocol.md §5.5', () => {
    expect(JOINMARKET_NICK_HEADER).toBe('J');
    expect(JM_VERSION_DIGIT).toBe('5');
    expect(NICK_HASH_LENGTH_BYTES).toBe(10);
    expect(NICK_MAX_ENCODED).toBe(14);
  });
});

describe('nickFromPublicKey', () => {
  it.each(keyVectors)('derives the %s pubkey and nick of vectors.json', (_name, key) => {
    const pub = publicKeyHexFromPrivateKey(hex(key.priv));
    expect(pub).toBe(key.pub);
    expect(bytesToHex(sha256(utf8ToBytes(pub)).subarray(0, 10))).toBe(key.h10);
    const nick = nickFromPublicKey(pub);
    expect(nick).toBe(key.nick);
    expect(nick.slice(2)).toBe(key.b58);
    expect(NICK_RE.test(nick)).toBe(true);
  });

  it('hashes the full hex of G as in §11.2', () => {
    expect(bytesToHex(sha256(utf8ToBytes(vectors.k1.pub)))).toBe(vectors.k1.sha256_hexpub);
  });

  it('lowercases before hashing', () => {
    expect(nickFromPublicKey(vectors.keys.maker.pub.toUpperCase())).toBe(vectors.keys.maker.nick);
  });

  it('right-pads a short base58 hash with O to 16 characters', () => {
    const { pub } = findPaddedKey();
    const nick = nickFromPublicKey(pub);
    expect(nick).toHaveLength(16);
    expect(nick.endsWith('O')).toBe(true);
    expect(NICK_RE.test(nick)).toBe(true);
    expect(nickMatchesPublicKey(nick, pub)).toBe(true);
    // The unpadded 15-character form is not a nick (our deliberate tightening).
    expect(nickMatchesPublicKey(nick.replace(/O+$/, ''), pub)).toBe(false);
  });

  it.each([
    '',
    '02',
    '04' + 'ab'.repeat(32),
    vectors.k1.pub + '00',
    'zz' + vectors.k1.pub.slice(2),
  ])('throws ERR_CRYPTO for %j', (bad) => {
    expect(thrownCode(() => nickFromPublicKey(bad))).toBe('ERR_CRYPTO');
  });
});

describe('nickMatchesPublicKey', () => {
  it.each(keyVectors)('accepts the %s nick with its pubkey', (_name, key) => {
    expect(nickMatchesPublicKey(key.nick, key.pub)).toBe(true);
  });

  it('fails for the pubkey hex in uppercase (docs/protocol.md §11.8)', () => {
    const { nick, pub } = vectors.keys.taker;
    expect(nickMatchesPublicKey(nick, pub.toUpperCase())).toBe(false);
  });

  it('ignores the version digit, as the reference does', () => {
    const { nick, pub } = vectors.keys.taker;
    expect(nickMatchesPublicKey('J9' + nick.slice(2), pub)).toBe(true);
  });

  it('fails for another key, another header, or another length', () => {
    const { taker, maker } = vectors.keys;
    expect(nickMatchesPublicKey(taker.nick, maker.pub)).toBe(false);
    expect(nickMatchesPublicKey('X' + taker.nick.slice(1), taker.pub)).toBe(false);
    expect(nickMatchesPublicKey(taker.nick + 'O', taker.pub)).toBe(false);
    expect(nickMatchesPublicKey('', taker.pub)).toBe(false);
  });
});

describe('createNickIdentity', () => {
  it('gives the vector nick for a given key and signs with it', () => {
    const { taker } = vectors.keys;
    const identity = createNickIdentity(hex(taker.priv));
    expect(identity.nick).toBe(taker.nick);
    expect(identity.publicKeyHex).toBe(taker.pub);
    expect(identity.sign(vectors.fill.signed_string)).toBe(vectors.fill.sig_b64);
  });

  it('copies the key, so wiping the caller buffer does not change signatures', () => {
    const priv = hex(vectors.keys.taker.priv);
    const identity = createNickIdentity(priv);
    priv.fill(0);
    expect(identity.sign(vectors.fill.signed_string)).toBe(vectors.fill.sig_b64);
  });

  it('makes a random valid identity when given no key', () => {
    const a = createNickIdentity();
    const b = createNickIdentity();
    expect(a.nick).not.toBe(b.nick);
    for (const identity of [a, b]) {
      expect(NICK_RE.test(identity.nick)).toBe(true);
      expect(identity.publicKeyHex).toMatch(/^0[23][0-9a-f]{64}$/);
      expect(nickMatchesPublicKey(identity.nick, identity.publicKeyHex)).toBe(true);
      expect(verifyMessage(identity.publicKeyHex, identity.sign('hello'), 'hello')).toBe(true);
    }
  });

  it('does not expose the private key as a property, in JSON or in inspect output', () => {
    const { taker } = vectors.keys;
    const identity = createNickIdentity(hex(taker.priv));
    expect(Object.keys(identity).sort()).toEqual(['nick', 'publicKeyHex', 'sign']);
    expect(JSON.stringify(identity)).not.toContain(taker.priv);
    expect(inspect(identity, { depth: 5, showHidden: true })).not.toContain(taker.priv);
    expect(Object.isFrozen(identity)).toBe(true);
  });

  it('rejects an invalid private key with ERR_CRYPTO', () => {
    expect(thrownCode(() => createNickIdentity(new Uint8Array(32)))).toBe('ERR_CRYPTO');
  });
});
