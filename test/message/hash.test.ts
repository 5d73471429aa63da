import { createHash } from 'node:crypto';
import { bytesToHex } from '@noble/hashes/utils.js';
import { describe, expect, it } from 'vitest';
import { bitcoinMessageHash } from '../../src/message/hash.js';
import { HOSTID_ONION } from '../../src/message/privmsg.js';
import { vectors } from './fixtures.js';

/** Independent reference: node:crypto over a hand-built preimage with an explicit varint. */
function expectedHash(message: Buffer, varint: Buffer): string {
  const preimage = Buffer.concat([
    Buffer.from([0x18]),
    Buffer.from('Bitcoin Signed Message:\n', 'ascii'),
    varint,
    message,
  ]);
  const once = createHash('sha256').update(preimage).digest();
  return createHash('sha256').update(once).digest('hex');
}

describe('bitcoinMessageHash', () => {
  it('matches docs/protocol.md §11.1 for "" and "abc"', () => {
    expect(bytesToHex(bitcoinMessageHash(''))).toBe(vectors.msghash_empty);
    expect(bytesToHex(bitcoinMessageHash('abc'))).toBe(vectors.msghash_abc);
  });

  it.each([
    ['fill', vectors.fill.signed_string, vectors.fill.msghash],
    ['pubkey', vectors.pubkey.body + HOSTID_ONION, vectors.pubkey.msghash],
    ['offer_priv', vectors.offer_priv.body + HOSTID_ONION, vectors.offer_priv.msghash],
    ['auth', vectors.auth.wire_b64 + HOSTID_ONION, vectors.auth.msghash],
  ])('matches the %s msghash of vectors.json', (_name, signed, msghash) => {
    expect(bytesToHex(bitcoinMessageHash(signed))).toBe(msghash);
  });

  it('the fill signed string is body + onion-network', () => {
    expect(vectors.fill.body + HOSTID_ONION).toBe(vectors.fill.signed_string);
  });

  it('hashes a string as its UTF-8 bytes', () => {
    const text = 'naïve ☃ 💡';
    expect(bitcoinMessageHash(text)).toEqual(bitcoinMessageHash(new TextEncoder().encode(text)));
    expect(bytesToHex(bitcoinMessageHash(text))).toBe(
      expectedHash(Buffer.from(text, 'utf8'), Buffer.from([Buffer.byteLength(text, 'utf8')])),
    );
  });

  it.each([
    [0xfc, Buffer.from([0xfc])],
    [0xfd, Buffer.from([0xfd, 0xfd, 0x00])],
    [0xffff, Buffer.from([0xfd, 0xff, 0xff])],
    [0x10000, Buffer.from([0xfe, 0x00, 0x00, 0x01, 0x00])],
  ])('encodes a length of %i with the right compact-size varint', (length, varint) => {
    const message = Buffer.alloc(length, 0x61);
    expect(bytesToHex(bitcoinMessageHash(new Uint8Array(message)))).toBe(
      expectedHash(message, varint),
    );
  });
});
