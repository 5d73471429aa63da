/**
 * End-to-end encryption of auth, ioauth, tx and sig (docs/protocol.md §7): NaCl `crypto_box` (X25519 key
 * agreement, XSalsa20-Poly1305) via tweetnacl.
 *
 * | wire payload = standard base64 (with padding) of:            |
 * |--------------------------------------------------------------|
 * | nonce, 24 bytes, random per message                          |
 * | Poly1305 MAC, 16 bytes                                       |
 * | ciphertext, as long as the plaintext                         |
 *
 * `nacl.box` returns MAC ‖ ciphertext, so the nonce is prepended here (R: src/jmdaemon/
 * enc_wrapper.py `encrypt_encode`, `decode_decrypt`; NG: jmcore/src/jmcore/encryption.py;
 * docs/protocol.md §7). Pure apart from random nonces and key pairs.
 */
import nacl from 'tweetnacl';
import { OnionmcError } from '../errors.js';
import { decodeBase64Strict, decodeHexStrict, encodeBase64 } from './signing.js';

/** Length of an X25519 public key, in bytes (docs/protocol.md §7: 64 hex characters in `!fill`/`!pubkey`). */
export const NACL_PUBLIC_KEY_BYTES = 32;
/** Length of an X25519 secret key, in bytes. */
export const NACL_SECRET_KEY_BYTES = 32;
/** Length of the XSalsa20 nonce that starts every wire payload, in bytes (docs/protocol.md §7). */
export const NACL_NONCE_BYTES = 24;
/** Length of the Poly1305 MAC that follows the nonce, in bytes (docs/protocol.md §7). */
export const NACL_MAC_BYTES = 16;

/** An X25519 key pair for one NaCl box session. */
export interface BoxKeyPair {
  /** 32 bytes; sent as 64 hex characters. */
  readonly publicKey: Uint8Array;
  /** 32 bytes; never sent, never logged; {@link wipe} it when the session ends. */
  readonly secretKey: Uint8Array;
}

/**
 * Creates a fresh random X25519 key pair: the taker makes one per round, the maker one per valid
 * `!fill` (docs/protocol.md §7).
 */
export function generateBoxKeyPair(): BoxKeyPair {
  const { publicKey, secretKey } = nacl.box.keyPair();
  return { publicKey, secretKey };
}

function assertLength(bytes: Uint8Array, length: number, what: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    throw new OnionmcError('ERR_CRYPTO', `${what} must be ${length} bytes`);
  }
}

/**
 * Encrypts `plaintext` (UTF-8; the reference sends ASCII) for the peer and returns the wire form
 * base64(nonce ‖ MAC ‖ ciphertext) (docs/protocol.md §7, vector §11.7).
 *
 * @param theirPublicKey - the peer's 32-byte X25519 public key.
 * @param mySecretKey - our 32-byte X25519 secret key.
 * @param nonce - 24 bytes; only tests pass one. Default: 24 fresh random bytes, as every real
 *   sender must use.
 * @throws OnionmcError `ERR_CRYPTO` when a key or the nonce has the wrong length.
 */
export function encryptToWire(
  plaintext: string,
  theirPublicKey: Uint8Array,
  mySecretKey: Uint8Array,
  nonce?: Uint8Array,
): string {
  assertLength(theirPublicKey, NACL_PUBLIC_KEY_BYTES, 'NaCl public key');
  assertLength(mySecretKey, NACL_SECRET_KEY_BYTES, 'NaCl secret key');
  const usedNonce = nonce ?? nacl.randomBytes(NACL_NONCE_BYTES);
  assertLength(usedNonce, NACL_NONCE_BYTES, 'NaCl nonce');
  const boxed = nacl.box(
    new TextEncoder().encode(plaintext),
    usedNonce,
    theirPublicKey,
    mySecretKey,
  );
  const wire = new Uint8Array(NACL_NONCE_BYTES + boxed.length);
  wire.set(usedNonce, 0);
  wire.set(boxed, NACL_NONCE_BYTES);
  return encodeBase64(wire);
}

/**
 * Reverses {@link encryptToWire}: base64-decodes, splits off the 24-byte nonce, opens the box and
 * decodes the plaintext as UTF-8 (docs/protocol.md §7 `decode_decrypt`).
 *
 * @param wire - canonical standard base64 with padding (for a received command, the tokens after
 *   the command word joined without spaces, docs/protocol.md §5.3).
 * @throws OnionmcError `ERR_CRYPTO` when the base64 is bad, the payload is shorter than nonce +
 *   MAC (40 bytes), authentication fails (wrong key, tampered bytes), the plaintext is not UTF-8,
 *   or a key has the wrong length.
 */
export function decryptFromWire(
  wire: string,
  theirPublicKey: Uint8Array,
  mySecretKey: Uint8Array,
): string {
  assertLength(theirPublicKey, NACL_PUBLIC_KEY_BYTES, 'NaCl public key');
  assertLength(mySecretKey, NACL_SECRET_KEY_BYTES, 'NaCl secret key');
  const bytes = decodeBase64Strict(wire);
  if (bytes === undefined) throw new OnionmcError('ERR_CRYPTO', 'NaCl payload is not base64');
  if (bytes.length < NACL_NONCE_BYTES + NACL_MAC_BYTES) {
    throw new OnionmcError('ERR_CRYPTO', 'NaCl payload is too short');
  }
  const opened = nacl.box.open(
    bytes.subarray(NACL_NONCE_BYTES),
    bytes.subarray(0, NACL_NONCE_BYTES),
    theirPublicKey,
    mySecretKey,
  );
  if (opened === null) throw new OnionmcError('ERR_CRYPTO', 'NaCl box authentication failed');
  try {
    // ignoreBOM: a leading U+FEFF is kept, as Python's bytes.decode('utf-8') keeps it.
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(opened);
  } catch (err) {
    throw new OnionmcError('ERR_CRYPTO', 'NaCl plaintext is not UTF-8', { cause: err });
  } finally {
    wipe(opened);
  }
}

/**
 * Parses a NaCl public key from `!fill`/`!pubkey`: exactly 64 hex characters, either case, as
 * the reference's `init_pubkey` (`binascii.unhexlify`, 32 bytes) accepts (docs/protocol.md §7).
 *
 * @throws OnionmcError `ERR_CRYPTO` ("Invalid nacl pubkey") for anything else.
 */
export function parseBoxPublicKeyHex(hex: string): Uint8Array {
  const bytes = hex.length === NACL_PUBLIC_KEY_BYTES * 2 ? decodeHexStrict(hex) : undefined;
  if (bytes === undefined) throw new OnionmcError('ERR_CRYPTO', 'Invalid nacl pubkey');
  return bytes;
}

/** Overwrites `bytes` with zeros (secret keys at session end, decrypted buffers). */
export function wipe(bytes: Uint8Array): void {
  bytes.fill(0);
}
