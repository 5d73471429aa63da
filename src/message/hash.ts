/**
 * The Bitcoin Signed Message hash that every JoinMarket nick signature covers (docs/protocol.md §5.6).
 *
 * | bytes            | content                                                   |
 * |------------------|-----------------------------------------------------------|
 * | 1                | `0x18` (compact-size length of the magic string, 24)       |
 * | 24               | ASCII `Bitcoin Signed Message:\n`                          |
 * | 1, 3, 5 or 9     | compact-size varint of the message length in bytes         |
 * | n                | the message, UTF-8                                         |
 *
 * The digest is SHA-256 applied twice to that byte string (R: src/jmbitcoin/secp256k1_main.py via
 * python-bitcointx `BitcoinMessage`; NG: jmcore/src/jmcore/crypto.py `bitcoin_message_hash`).
 * SHA-256 comes from node:crypto (OpenSSL): about 2.5× faster than a JavaScript SHA-256 on the
 * few hundred bytes of a privmsg, which matters once the ECDSA check itself is native
 * (docs/performance.md). Pure: no I/O, no state.
 */
import { hash } from 'node:crypto';
import { concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';

/** The magic prefix, including its own compact-size length byte 0x18 (docs/protocol.md §5.6). */
const MESSAGE_MAGIC_BYTES: Uint8Array = concatBytes(
  Uint8Array.of(0x18),
  utf8ToBytes('Bitcoin Signed Message:\n'),
);

/** Length in bytes of a {@link bitcoinMessageHash} digest (SHA-256). */
export const BITCOIN_MESSAGE_HASH_BYTES = 32;

/**
 * Bitcoin's compact-size unsigned integer: 1 byte below 0xfd, else a marker byte (0xfd, 0xfe, 0xff)
 * followed by 2, 4 or 8 little-endian bytes.
 */
function compactSize(length: number): Uint8Array {
  if (length < 0xfd) return Uint8Array.of(length);
  if (length <= 0xffff) {
    const out = new Uint8Array(3);
    out[0] = 0xfd;
    new DataView(out.buffer).setUint16(1, length, true);
    return out;
  }
  if (length <= 0xffffffff) {
    const out = new Uint8Array(5);
    out[0] = 0xfe;
    new DataView(out.buffer).setUint32(1, length, true);
    return out;
  }
  const out = new Uint8Array(9);
  out[0] = 0xff;
  new DataView(out.buffer).setBigUint64(1, BigInt(length), true);
  return out;
}

/**
 * Computes the Bitcoin Signed Message hash (docs/protocol.md §5.6, vectors §11.1):
 * `SHA256(SHA256(0x18 ‖ "Bitcoin Signed Message:\n" ‖ compactSize(len) ‖ message))`.
 *
 * @param message - a string (encoded as UTF-8) or raw bytes, hashed as given.
 * @returns the 32-byte digest, to be signed as is (no further hashing; see LIBRARIES.md on
 *   noble's `prehash: false`).
 */
export function bitcoinMessageHash(message: string | Uint8Array): Uint8Array {
  const body = typeof message === 'string' ? utf8ToBytes(message) : message;
  const first = hash(
    'sha256',
    concatBytes(MESSAGE_MAGIC_BYTES, compactSize(body.length), body),
    'buffer',
  );
  const digest = hash('sha256', first, 'buffer');
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
}
