/**
 * ECDSA signatures over the Bitcoin Signed Message hash, as JoinMarket nick signatures use them
 * (docs/protocol.md §5.6): secp256k1, RFC6979 nonces, low-S, DER without a sighash byte, standard base64 with
 * padding. Also the strict hex and base64 decoders the other message modules share.
 *
 * Sources: R: src/jmbitcoin/secp256k1_main.py `ecdsa_sign`, `ecdsa_raw_sign`, `ecdsa_verify`;
 * python-bitcointx `CPubKey.verify`; docs/protocol.md §5.6; noble's `prehash: false` trap (the hash
 * is signed as is).
 * No I/O; the only state is the verifier's bounded public key cache.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { base64 } from '@scure/base';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { OnionmcError } from '../errors.js';
import { bitcoinMessageHash } from './hash.js';
import {
  loadSecp256k1Backend,
  normalizeS,
  parseDerSignature,
  type Secp256k1Backend,
  type Secp256k1BackendName,
} from './secp256k1-backend.js';

/** Length of a secp256k1 private key (scalar), in bytes. */
export const SECP256K1_PRIVATE_KEY_BYTES = 32;
/** Length of a compressed secp256k1 public key (`02`/`03` ‖ x), in bytes. */
export const SECP256K1_COMPRESSED_PUBLIC_KEY_BYTES = 33;
/** Length of an uncompressed secp256k1 public key (`04` ‖ x ‖ y), in bytes. */
export const SECP256K1_UNCOMPRESSED_PUBLIC_KEY_BYTES = 65;

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

/**
 * Decodes hex (either case, even length, nothing else: no `0x`, no whitespace).
 *
 * @returns the bytes, or `undefined` when `hex` is not such a string.
 */
export function decodeHexStrict(hex: string): Uint8Array | undefined {
  if (!HEX_RE.test(hex)) return undefined;
  return hexToBytes(hex);
}

/**
 * Decodes canonical standard base64 (RFC 4648 §4 alphabet, `=` padding required, zero pad bits,
 * no whitespace). Stricter than Python's lenient `base64.b64decode`, which the reference uses; no
 * honest JoinMarket sender produces anything else.
 *
 * @returns the bytes, or `undefined` when `text` is not canonical base64.
 */
export function decodeBase64Strict(text: string): Uint8Array | undefined {
  try {
    return base64.decode(text);
  } catch {
    return undefined;
  }
}

/** Encodes bytes as standard base64 with padding (the wire form of signatures and NaCl boxes). */
export function encodeBase64(bytes: Uint8Array): string {
  return base64.encode(bytes);
}

/**
 * Parses a secp256k1 public key given as hex: 33 bytes with prefix `02`/`03` or 65 bytes with
 * prefix `04`, on the curve. Either hex case is accepted here (the nick check, not this parse,
 * rejects uppercase; docs/protocol.md §5.5). Answers come from the bounded public key cache of
 * {@link verifyMessage}.
 *
 * @returns the raw bytes (a fresh copy), or `undefined` when the text is not such a key.
 */
export function parsePublicKeyHex(publicKeyHex: string): Uint8Array | undefined {
  return activeVerifier.parsePublicKeyHex(publicKeyHex)?.raw.slice();
}

/**
 * Returns the compressed public key, as 66 lowercase hex characters, of a private key.
 *
 * @throws OnionmcError `ERR_CRYPTO` when `privateKey` is not 32 bytes or not in `[1, n-1]`.
 */
export function publicKeyHexFromPrivateKey(privateKey: Uint8Array): string {
  assertPrivateKey(privateKey);
  return bytesToHex(secp256k1.getPublicKey(privateKey, true));
}

function assertPrivateKey(privateKey: Uint8Array): void {
  if (
    !(privateKey instanceof Uint8Array) ||
    privateKey.length !== SECP256K1_PRIVATE_KEY_BYTES ||
    !secp256k1.utils.isValidSecretKey(privateKey)
  ) {
    throw new OnionmcError('ERR_CRYPTO', 'invalid secp256k1 private key');
  }
}

/**
 * Signs `message` as a JoinMarket nick signature (docs/protocol.md §5.6): ECDSA over
 * {@link bitcoinMessageHash}`(message)` with the RFC6979 nonce (no low-R grinding), low-S,
 * DER-encoded, then standard base64 with padding. Reproduces the vectors of docs/protocol.md §11.6 byte for
 * byte.
 *
 * @param privateKey - 32-byte secp256k1 scalar.
 * @param message - the exact signed string, e.g. `body + hostid` for a privmsg.
 * @returns base64 of the DER signature (typically 96 characters).
 * @throws OnionmcError `ERR_CRYPTO` when the private key is invalid.
 */
export function signMessage(privateKey: Uint8Array, message: string): string {
  assertPrivateKey(privateKey);
  const der = secp256k1.sign(bitcoinMessageHash(message), privateKey, {
    prehash: false,
    lowS: true,
    format: 'der',
  });
  return base64.encode(der);
}

/** Options of {@link verifyMessage}. */
export interface VerifyMessageOptions {
  /**
   * Reject signatures whose `s` is above n/2. Default `false`: the reference (python-bitcointx
   * `CPubKey.verify`) normalizes `s` before libsecp256k1 verifies, so it accepts high-S. ng's
   * nick-auth proof check (coincurve, no normalization) needs `true` (docs/protocol.md §9.6).
   */
  readonly requireLowS?: boolean;
}

/** How many parsed public keys {@link verifyMessage} keeps (least recently used evicted). */
export const PUBLIC_KEY_CACHE_ENTRIES = 4096;

/** A public key parsed once: its raw bytes and the form the backend verifies with. */
interface ParsedPublicKey {
  readonly raw: Uint8Array;
  readonly prepared: Uint8Array;
}

/** A message verifier bound to one backend, with its own public key cache. */
export interface MessageVerifier {
  /** The backend that verifies. */
  readonly backend: Secp256k1Backend;
  /** {@link verifyMessage} on this verifier's backend and cache. */
  verify(
    publicKeyHex: string,
    signatureBase64: string,
    message: string,
    options?: VerifyMessageOptions,
  ): boolean;
  /** Parses (or finds in the cache) a public key; `undefined` when not a valid key. */
  parsePublicKeyHex(publicKeyHex: string): ParsedPublicKey | undefined;
}

/**
 * Creates a {@link MessageVerifier}: the acceptance rules of {@link verifyMessage} over `backend`,
 * with an LRU cache of at most `cacheEntries` public keys (valid or not) keyed by their hex text,
 * so a nick's key is decoded and checked on the curve once.
 *
 * @param backend - the ECDSA implementation (see {@link loadSecp256k1Backend}).
 * @param cacheEntries - cache bound (at least 1).
 */
export function createMessageVerifier(
  backend: Secp256k1Backend,
  cacheEntries: number = PUBLIC_KEY_CACHE_ENTRIES,
): MessageVerifier {
  const cache = new Map<string, ParsedPublicKey | null>();
  const bound = Math.max(1, Math.floor(cacheEntries));

  function parseUncached(publicKeyHex: string): ParsedPublicKey | undefined {
    const bytes = decodeHexStrict(publicKeyHex);
    if (bytes === undefined) return undefined;
    const prefix = bytes[0];
    const shapeOk =
      (bytes.length === SECP256K1_COMPRESSED_PUBLIC_KEY_BYTES &&
        (prefix === 0x02 || prefix === 0x03)) ||
      (bytes.length === SECP256K1_UNCOMPRESSED_PUBLIC_KEY_BYTES && prefix === 0x04);
    if (!shapeOk) return undefined;
    const prepared = backend.preparePublicKey(bytes);
    return prepared === undefined ? undefined : { raw: bytes, prepared };
  }

  function parsePublicKey(publicKeyHex: string): ParsedPublicKey | undefined {
    // Long strings are not keys: do not let them occupy the cache.
    if (publicKeyHex.length > 2 * SECP256K1_UNCOMPRESSED_PUBLIC_KEY_BYTES) return undefined;
    const hit = cache.get(publicKeyHex);
    if (hit !== undefined) {
      cache.delete(publicKeyHex);
      cache.set(publicKeyHex, hit);
      return hit ?? undefined;
    }
    const parsed = parseUncached(publicKeyHex);
    if (cache.size >= bound) {
      const oldest = cache.keys().next();
      if (oldest.done !== true) cache.delete(oldest.value);
    }
    cache.set(publicKeyHex, parsed ?? null);
    return parsed;
  }

  return {
    backend,
    parsePublicKeyHex: parsePublicKey,
    verify(publicKeyHex, signatureBase64, message, options = {}) {
      try {
        const publicKey = parsePublicKey(publicKeyHex);
        if (publicKey === undefined) return false;
        const der = decodeBase64Strict(signatureBase64);
        if (der === undefined) return false;
        const sig = parseDerSignature(der);
        if (sig === undefined) return false;
        if (sig.highS) {
          if (options.requireLowS === true) return false;
          normalizeS(sig.compact);
        }
        return backend.verify(sig.compact, bitcoinMessageHash(message), publicKey.prepared);
      } catch {
        return false;
      }
    },
  };
}

let activeVerifier = createMessageVerifier(loadSecp256k1Backend());

/**
 * Which backend {@link verifyMessage} uses: `libsecp256k1` (the `secp256k1` package's native
 * binding) or `noble` (the pure fallback, when the native module could not be loaded).
 */
export function signatureBackendName(): Secp256k1BackendName {
  return activeVerifier.backend.name;
}

/**
 * Replaces the backend of {@link verifyMessage} and {@link parsePublicKeyHex} (and empties the key
 * cache). For tests and benchmarks forcing the pure fallback; production code never calls it.
 *
 * @returns the backend used before.
 */
export function useSignatureBackend(backend: Secp256k1Backend): Secp256k1Backend {
  const previous = activeVerifier.backend;
  activeVerifier = createMessageVerifier(backend);
  return previous;
}

/**
 * Verifies a JoinMarket nick signature (docs/protocol.md §5.6) the way the reference does: strict
 * DER (as libsecp256k1's `secp256k1_ecdsa_signature_parse_der`; r and s in `[1, n-1]`), high-S
 * accepted unless {@link VerifyMessageOptions.requireLowS} (python-bitcointx normalizes before
 * verifying), over {@link bitcoinMessageHash}`(message)`. Verified by libsecp256k1 when its
 * native binding loads, else by @noble/curves, with the same answers (see secp256k1-backend.ts);
 * a nick's public key is parsed once (LRU of {@link PUBLIC_KEY_CACHE_ENTRIES}).
 *
 * Never throws: any parse error (bad hex, bad base64, bad DER, a point off the curve) gives
 * `false`, as `CPubKey.verify` does.
 *
 * @param publicKeyHex - 33-byte compressed (or 65-byte uncompressed) key as hex, either case.
 * @param signatureBase64 - canonical standard base64 of the DER signature.
 * @param message - the exact signed string.
 */
export function verifyMessage(
  publicKeyHex: string,
  signatureBase64: string,
  message: string,
  options: VerifyMessageOptions = {},
): boolean {
  return activeVerifier.verify(publicKeyHex, signatureBase64, message, options);
}
