/**
 * The secp256k1 ECDSA verifier behind {@link verifyMessage} (docs/protocol.md §5.6): libsecp256k1
 * through the `secp256k1` npm package's native binding when it loads, else @noble/curves (pure
 * TypeScript, about 30× slower on the machines measured in docs/performance.md).
 *
 * Acceptance rules are fixed here, in TypeScript, and are the same whichever backend verifies:
 * - {@link parseDerSignature} is the strict DER of libsecp256k1's
 *   `secp256k1_ecdsa_signature_parse_der`, which python-bitcointx `CPubKey.verify` calls (a
 *   signature it parses with r or s out of `[1, n-1]` then fails verification, so both are
 *   rejected here at parse time);
 * - high-S is normalised (python-bitcointx calls `secp256k1_ecdsa_signature_normalize`) unless the
 *   caller requires low-S (ng's nick-auth, docs/protocol.md §9.6);
 * - the backend then only sees a 64-byte compact (r ‖ s) with low s, and a public key it prepared.
 *
 * The native module is loaded with `require('secp256k1/bindings')`, never the package's index,
 * which silently falls back to `elliptic` (another acceptance policy, and slow).
 *
 * Pure apart from the one-time module load: no I/O after that, no other state.
 */
import { createRequire } from 'node:module';
import { secp256k1 } from '@noble/curves/secp256k1.js';

/** Which implementation verifies: the native libsecp256k1 binding, or the pure fallback. */
export type Secp256k1BackendName = 'libsecp256k1' | 'noble';

/** A secp256k1 ECDSA verifier working on already-validated inputs. */
export interface Secp256k1Backend {
  /** Which implementation this is. */
  readonly name: Secp256k1BackendName;
  /**
   * Checks that `publicKey` (33 bytes `02`/`03` ‖ x, or 65 bytes `04` ‖ x ‖ y; the caller has
   * checked this shape) is a point on the curve, and returns the form {@link verify} takes (the
   * 65-byte uncompressed encoding: no square root on every verify).
   *
   * @returns the prepared key, or `undefined` when the point is not on the curve.
   */
  preparePublicKey(publicKey: Uint8Array): Uint8Array | undefined;
  /**
   * Verifies a signature over a 32-byte digest (no further hashing).
   *
   * @param compact - r ‖ s, 32 bytes each, big-endian, both in `[1, n-1]`, s ≤ n/2.
   * @param digest - the 32-byte message hash.
   * @param preparedKey - a key returned by {@link preparePublicKey} of this backend.
   * @returns whether the signature is valid; never throws.
   */
  verify(compact: Uint8Array, digest: Uint8Array, preparedKey: Uint8Array): boolean;
}

/** The subset of the `secp256k1` package's binding (`secp256k1/bindings`) used here. */
interface NativeSecp256k1 {
  publicKeyVerify(publicKey: Uint8Array): boolean;
  publicKeyConvert(publicKey: Uint8Array, compressed: boolean): Uint8Array;
  ecdsaVerify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

/** The group order n of secp256k1, big-endian. */
const ORDER_BYTES = Uint8Array.from(
  Buffer.from('fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141', 'hex'),
);
/** n / 2 rounded down, big-endian: the largest low s. */
const HALF_ORDER_BYTES = Uint8Array.from(
  Buffer.from('7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0', 'hex'),
);
const ORDER = secp256k1.Point.Fn.ORDER;

/** Compares two 32-byte big-endian numbers: negative, zero or positive as a < b, a = b, a > b. */
function compare32(a: Uint8Array, aOffset: number, b: Uint8Array): number {
  for (let i = 0; i < 32; i++) {
    const d = (a[aOffset + i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function isZero32(a: Uint8Array, offset: number): boolean {
  for (let i = 0; i < 32; i++) if (a[offset + i] !== 0) return false;
  return true;
}

/** Reads one DER INTEGER at `pos` into `out[outOffset..+32]`; returns the position after it. */
function readDerInteger(
  der: Uint8Array,
  pos: number,
  end: number,
  out: Uint8Array,
  outOffset: number,
): number | undefined {
  if (pos + 2 > end || der[pos] !== 0x02) return undefined;
  const length = der[pos + 1] ?? 0;
  pos += 2;
  // Short-form length only: a long form (≥ 128 bytes) cannot hold a value below n.
  if (length === 0 || length > 33 || pos + length > end) return undefined;
  const first = der[pos] ?? 0;
  if (first & 0x80) return undefined; // negative
  if (first === 0x00 && length > 1 && ((der[pos + 1] ?? 0) & 0x80) === 0) return undefined; // padding
  let start = pos;
  let valueLength = length;
  if (first === 0x00 && length > 1) {
    start++;
    valueLength--;
  }
  if (valueLength > 32) return undefined; // ≥ 2^256 > n
  out.set(der.subarray(start, start + valueLength), outOffset + 32 - valueLength);
  return pos + length;
}

/**
 * Parses a DER ECDSA signature as strictly as libsecp256k1's
 * `secp256k1_ecdsa_signature_parse_der` followed by its verifier (docs/protocol.md §5.6):
 * `30 len 02 len r 02 len s` with minimal lengths, no trailing bytes inside or after the
 * sequence, positive integers without superfluous leading zeros, and r, s in `[1, n-1]`.
 *
 * @returns r ‖ s as 64 bytes and whether s is above n/2, or `undefined` when not such a signature.
 */
export function parseDerSignature(
  der: Uint8Array,
): { readonly compact: Uint8Array; readonly highS: boolean } | undefined {
  const end = der.length;
  if (end < 8 || der[0] !== 0x30) return undefined;
  const seqLength = der[1] ?? 0;
  if (seqLength & 0x80 || seqLength !== end - 2) return undefined;
  const compact = new Uint8Array(64);
  const afterR = readDerInteger(der, 2, end, compact, 0);
  if (afterR === undefined) return undefined;
  const afterS = readDerInteger(der, afterR, end, compact, 32);
  if (afterS !== end) return undefined;
  if (isZero32(compact, 0) || isZero32(compact, 32)) return undefined;
  if (compare32(compact, 0, ORDER_BYTES) >= 0 || compare32(compact, 32, ORDER_BYTES) >= 0)
    return undefined;
  return { compact, highS: compare32(compact, 32, HALF_ORDER_BYTES) > 0 };
}

/** Replaces s by n - s in a compact signature (in place), as `secp256k1_ecdsa_signature_normalize`. */
export function normalizeS(compact: Uint8Array): void {
  let s = 0n;
  for (let i = 32; i < 64; i++) s = (s << 8n) | BigInt(compact[i] ?? 0);
  let low = ORDER - s;
  for (let i = 63; i >= 32; i--) {
    compact[i] = Number(low & 0xffn);
    low >>= 8n;
  }
}

/** The pure fallback: @noble/curves. */
export const nobleBackend: Secp256k1Backend = {
  name: 'noble',
  preparePublicKey(publicKey) {
    try {
      const point = secp256k1.Point.fromBytes(publicKey);
      point.assertValidity();
      return point.toBytes(false);
    } catch {
      return undefined;
    }
  },
  verify(compact, digest, preparedKey) {
    try {
      return secp256k1.verify(compact, digest, preparedKey, {
        prehash: false,
        lowS: false,
        format: 'compact',
      });
    } catch {
      return false;
    }
  },
};

/** Wraps the native binding as a {@link Secp256k1Backend}. */
function nativeBackend(native: NativeSecp256k1): Secp256k1Backend {
  return {
    name: 'libsecp256k1',
    preparePublicKey(publicKey) {
      try {
        if (!native.publicKeyVerify(publicKey)) return undefined;
        return native.publicKeyConvert(publicKey, false);
      } catch {
        return undefined;
      }
    },
    verify(compact, digest, preparedKey) {
      try {
        return native.ecdsaVerify(compact, digest, preparedKey);
      } catch {
        return false;
      }
    },
  };
}

/**
 * A known answer the native module must reproduce before it is used: a signature by the key 1
 * (generator G) over the digest `00…01` made with @noble/curves, valid, and invalid on another
 * digest.
 */
function selfTest(backend: Secp256k1Backend): boolean {
  const digest = new Uint8Array(32);
  digest[31] = 1;
  const key = backend.preparePublicKey(secp256k1.Point.BASE.toBytes(true));
  if (key === undefined) return false;
  const priv = new Uint8Array(32);
  priv[31] = 1;
  const sig = secp256k1.sign(digest, priv, { prehash: false, lowS: true, format: 'compact' });
  const other = Uint8Array.from(digest);
  other[0] = 1;
  return backend.verify(sig, digest, key) && !backend.verify(sig, other, key);
}

/**
 * Loads the native libsecp256k1 backend, or returns the pure @noble/curves one when the module
 * cannot be loaded (no prebuilt binary for this platform and no build, a wrong ABI) or fails its
 * known-answer test.
 *
 * @param requireNative - how to load `secp256k1/bindings` (tests pass one that throws).
 */
export function loadSecp256k1Backend(
  requireNative: () => unknown = () => createRequire(import.meta.url)('secp256k1/bindings'),
): Secp256k1Backend {
  try {
    const backend = nativeBackend(requireNative() as NativeSecp256k1);
    if (selfTest(backend)) return backend;
  } catch {
    // fall through to the pure backend
  }
  return nobleBackend;
}
