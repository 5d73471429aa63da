/**
 * Differential test of signature verification: onionmc's verifyMessage, on the native
 * libsecp256k1 backend and on the pure fallback, must accept and reject exactly what the earlier
 * pure @noble/curves implementation (kept below as the oracle) accepts and rejects: valid,
 * mutated, high-S (with and without requireLowS), non-strict DER and malformed signatures, and
 * valid, off-curve and malformed public keys (docs/protocol.md §5.6, §11.6).
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import fc from 'fast-check';
import { createRequire } from 'node:module';
import { afterAll, describe, expect, it } from 'vitest';
import { HOSTID_ONION } from '../../src/message/privmsg.js';
import {
  loadSecp256k1Backend,
  nobleBackend,
  parseDerSignature,
  type Secp256k1Backend,
} from '../../src/message/secp256k1-backend.js';
import {
  createMessageVerifier,
  parsePublicKeyHex,
  signatureBackendName,
  signMessage,
  useSignatureBackend,
  verifyMessage,
} from '../../src/message/signing.js';
import { hex, vectors } from './fixtures.js';

const N = secp256k1.Point.Fn.ORDER;
const { taker, maker } = vectors.keys;

/** The Bitcoin-message hash as the earlier implementation computed it (noble SHA-256). */
function oracleHash(message: string): Uint8Array {
  const body = utf8ToBytes(message);
  const len =
    body.length < 0xfd
      ? Uint8Array.of(body.length)
      : Uint8Array.of(0xfd, body.length & 0xff, body.length >> 8);
  return sha256(
    sha256(concatBytes(Uint8Array.of(0x18), utf8ToBytes('Bitcoin Signed Message:\n'), len, body)),
  );
}

/** The earlier verifyMessage, verbatim in behaviour: noble parses the key and strict DER. */
function oracleVerify(pubHex: string, sigB64: string, message: string, requireLowS: boolean) {
  try {
    if (!/^(?:[0-9a-fA-F]{2})*$/.test(pubHex)) return false;
    const key = hex(pubHex);
    const okShape =
      (key.length === 33 && (key[0] === 2 || key[0] === 3)) || (key.length === 65 && key[0] === 4);
    if (!okShape) return false;
    secp256k1.Point.fromBytes(key).assertValidity();
    const der = base64.decode(sigB64);
    if (der.length === 0) return false;
    return secp256k1.verify(der, oracleHash(message), key, {
      prehash: false,
      lowS: requireLowS,
      format: 'der',
    });
  } catch {
    return false;
  }
}

const nativeBackend = loadSecp256k1Backend();
const backends: Secp256k1Backend[] =
  nativeBackend.name === 'noble' ? [nobleBackend] : [nativeBackend, nobleBackend];

/** Asserts that every backend and the oracle agree on one input; returns the verdict. */
function agree(pubHex: string, sigB64: string, message: string): boolean {
  const expected = oracleVerify(pubHex, sigB64, message, false);
  const expectedLowS = oracleVerify(pubHex, sigB64, message, true);
  for (const backend of backends) {
    const fresh = createMessageVerifier(backend);
    expect(fresh.verify(pubHex, sigB64, message), backend.name).toBe(expected);
    expect(fresh.verify(pubHex, sigB64, message, { requireLowS: true }), backend.name).toBe(
      expectedLowS,
    );
    if (backend.name === 'noble') continue; // slow: the checks below run on the native one
    // Answers must not depend on the cache: again on the same verifier, and on a shared one.
    expect(fresh.verify(pubHex, sigB64, message), `${backend.name} cached`).toBe(expected);
    expect(shared(backend).verify(pubHex, sigB64, message), `${backend.name} shared`).toBe(
      expected,
    );
  }
  return expected;
}

const sharedVerifiers = new Map<string, ReturnType<typeof createMessageVerifier>>();
function shared(backend: Secp256k1Backend) {
  let v = sharedVerifiers.get(backend.name);
  if (v === undefined) {
    v = createMessageVerifier(backend, 8); // tiny: exercises eviction
    sharedVerifiers.set(backend.name, v);
  }
  return v;
}

const privateKey = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .filter((k) => secp256k1.utils.isValidSecretKey(k));
const message = fc.string({ unit: 'grapheme', maxLength: 400 });

/** DER INTEGER encodings of a value: minimal, and the non-strict variants libsecp256k1 rejects. */
function derInt(value: bigint, variant: number): Uint8Array {
  let bytes = hex(value.toString(16).padStart(2 * Math.ceil(value.toString(16).length / 2), '0'));
  if ((bytes[0] ?? 0) & 0x80) bytes = concatBytes(Uint8Array.of(0), bytes);
  switch (variant) {
    case 1: // superfluous leading zero
      bytes = concatBytes(Uint8Array.of(0), bytes);
      break;
    case 2: // negative: drop the sign byte
      if (bytes[0] === 0 && bytes.length > 1) bytes = bytes.subarray(1);
      else bytes = concatBytes(Uint8Array.of(0xff), bytes);
      break;
    case 3: // long-form length
      return concatBytes(Uint8Array.of(0x02, 0x81, bytes.length), bytes);
    case 4: // empty integer
      return Uint8Array.of(0x02, 0x00);
    case 5: // wrong tag
      return concatBytes(Uint8Array.of(0x03, bytes.length), bytes);
    default:
      break;
  }
  return concatBytes(Uint8Array.of(0x02, bytes.length), bytes);
}

function derSeq(body: Uint8Array, variant: number): Uint8Array {
  switch (variant) {
    case 1:
      return concatBytes(Uint8Array.of(0x30, 0x81, body.length), body);
    case 2:
      return concatBytes(Uint8Array.of(0x30, body.length + 1), body);
    case 3:
      return concatBytes(Uint8Array.of(0x30, body.length), body, Uint8Array.of(0));
    case 4:
      return concatBytes(Uint8Array.of(0x31, body.length), body);
    default:
      return concatBytes(Uint8Array.of(0x30, body.length), body);
  }
}

describe('verifyMessage differs in nothing from the earlier pure implementation', () => {
  afterAll(() => {
    useSignatureBackend(nativeBackend);
  });

  it('has the native backend on this machine, and verifies the vectors on both', () => {
    let loadable = true;
    try {
      createRequire(import.meta.url)('secp256k1/bindings');
    } catch {
      loadable = false;
    }
    expect(signatureBackendName()).toBe(loadable ? 'libsecp256k1' : 'noble');
    for (const [key, body, sig] of [
      [taker, vectors.fill.body, vectors.fill.sig_b64],
      [maker, vectors.pubkey.body, vectors.pubkey.sig_b64],
      [maker, vectors.offer_priv.body, vectors.offer_priv.sig_b64],
      [taker, vectors.auth.wire_b64, vectors.auth.sig_b64],
    ] as const) {
      expect(agree(key.pub, sig, body + HOSTID_ONION)).toBe(true);
    }
  });

  it('agrees on valid signatures, other messages and other keys', () => {
    fc.assert(
      fc.property(privateKey, privateKey, message, message, (k1, k2, m1, m2) => {
        const sig = signMessage(k1, m1);
        const pub1 = bytesToHex(secp256k1.getPublicKey(k1, true));
        const pub2 = bytesToHex(secp256k1.getPublicKey(k2, true));
        const pub1u = bytesToHex(secp256k1.getPublicKey(k1, false));
        expect(agree(pub1, sig, m1)).toBe(true);
        expect(agree(pub1u, sig, m1)).toBe(true);
        agree(pub1.toUpperCase(), sig, m1);
        agree(pub2, sig, m1);
        agree(pub1, sig, m2);
      }),
      { numRuns: 30 },
    );
  });

  it('agrees on the high-S twin (accepted; rejected with requireLowS)', () => {
    fc.assert(
      fc.property(privateKey, message, (k, m) => {
        const der = base64.decode(signMessage(k, m));
        const sig = secp256k1.Signature.fromBytes(der, 'der');
        const twin = new secp256k1.Signature(sig.r, N - sig.s);
        const pub = bytesToHex(secp256k1.getPublicKey(k, true));
        const twinB64 = base64.encode(twin.toBytes('der'));
        expect(agree(pub, twinB64, m)).toBe(true);
        expect(createMessageVerifier(nativeBackend).verify(pub, twinB64, m)).toBe(true);
        expect(verifyMessage(pub, twinB64, m, { requireLowS: true })).toBe(false);
      }),
      { numRuns: 40 },
    );
  });

  it('agrees on byte flips, truncations and extensions of a valid DER signature', () => {
    const m = vectors.fill.signed_string;
    const der = base64.decode(vectors.fill.sig_b64);
    fc.assert(
      fc.property(
        fc.nat({ max: der.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        fc.nat({ max: der.length }),
        fc.uint8Array({ maxLength: 3 }),
        (at, xor, cut, extra) => {
          const flipped = Uint8Array.from(der);
          flipped[at] = (flipped[at] ?? 0) ^ xor;
          agree(taker.pub, base64.encode(flipped), m);
          agree(taker.pub, base64.encode(der.subarray(0, cut)), m);
          agree(taker.pub, base64.encode(concatBytes(der, extra)), m);
          agree(taker.pub, base64.encode(concatBytes(extra, der)), m);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('agrees on non-strict and out-of-range DER encodings of (r, s)', () => {
    const m = vectors.fill.signed_string;
    const sig = secp256k1.Signature.fromBytes(base64.decode(vectors.fill.sig_b64), 'der');
    const scalar = fc.oneof(
      fc.constantFrom(
        sig.r,
        sig.s,
        N - sig.s,
        0n,
        1n,
        N - 1n,
        N,
        N + 1n,
        2n ** 256n - 1n,
        2n ** 256n,
      ),
      fc.bigInt({ min: 0n, max: 2n ** 264n }),
    );
    fc.assert(
      fc.property(
        fc.boolean(),
        scalar,
        scalar,
        fc.nat({ max: 5 }),
        fc.nat({ max: 5 }),
        fc.nat({ max: 4 }),
        (useReal, r0, s0, vr, vs, vseq) => {
          const r = useReal ? sig.r : r0;
          const s = useReal ? sig.s : s0;
          const der = derSeq(concatBytes(derInt(r, vr), derInt(s, vs)), vseq);
          const verdict = agree(taker.pub, base64.encode(der), m);
          if (useReal && vr === 0 && vs === 0 && vseq === 0) expect(verdict).toBe(true);
          if (vr !== 0 || vs !== 0 || vseq !== 0) expect(verdict).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('agrees on arbitrary bytes as a signature, and on malformed base64', () => {
    const m = vectors.fill.signed_string;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.string({ maxLength: 100 }), (bytes, s) => {
        expect(agree(taker.pub, base64.encode(bytes), m)).toBe(false);
        agree(taker.pub, s, m);
        agree(taker.pub, `${vectors.fill.sig_b64}${s}`, m);
      }),
      { numRuns: 200 },
    );
  });

  it('agrees on malformed and off-curve public keys', () => {
    const m = vectors.fill.signed_string;
    const sigB64 = vectors.fill.sig_b64;
    const prefix = fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 7);
    fc.assert(
      fc.property(
        prefix,
        fc.uint8Array({ minLength: 32, maxLength: 64 }),
        fc.string({ maxLength: 140 }),
        (p, body, text) => {
          agree(bytesToHex(concatBytes(Uint8Array.of(p), body)), sigB64, m);
          agree(bytesToHex(concatBytes(Uint8Array.of(p), body.subarray(0, 32))), sigB64, m);
          agree(text, sigB64, m);
        },
      ),
      { numRuns: 200 },
    );
    // The taker's key in hybrid form (06/07): on the curve, accepted by neither.
    const point = secp256k1.Point.fromBytes(hex(taker.pub));
    const unc = point.toBytes(false);
    const hybrid = Uint8Array.from(unc);
    hybrid[0] = point.y % 2n === 0n ? 6 : 7;
    expect(agree(bytesToHex(hybrid), sigB64, m)).toBe(false);
    expect(agree(bytesToHex(unc), sigB64, m)).toBe(true);
  });
});

describe('secp256k1 backend loading', () => {
  it('falls back to the pure backend when the native module cannot load', () => {
    const backend = loadSecp256k1Backend(() => {
      throw new Error('Cannot find module');
    });
    expect(backend.name).toBe('noble');
    const previous = useSignatureBackend(backend);
    try {
      expect(signatureBackendName()).toBe('noble');
      expect(verifyMessage(taker.pub, vectors.fill.sig_b64, vectors.fill.signed_string)).toBe(true);
      expect(verifyMessage(maker.pub, vectors.fill.sig_b64, vectors.fill.signed_string)).toBe(
        false,
      );
      expect(parsePublicKeyHex(taker.pub)).toEqual(hex(taker.pub));
    } finally {
      useSignatureBackend(previous);
    }
  });

  it('falls back when the native module answers wrongly (known-answer test)', () => {
    const liar = {
      publicKeyVerify: () => true,
      publicKeyConvert: (k: Uint8Array) => k,
      ecdsaVerify: () => true,
    };
    expect(loadSecp256k1Backend(() => liar).name).toBe('noble');
  });

  it('parseDerSignature flags high S and rejects r = 0', () => {
    const sig = secp256k1.Signature.fromBytes(base64.decode(vectors.fill.sig_b64), 'der');
    const twin = new secp256k1.Signature(sig.r, N - sig.s).toBytes('der');
    expect(parseDerSignature(twin)?.highS).toBe(true);
    expect(parseDerSignature(base64.decode(vectors.fill.sig_b64))?.highS).toBe(false);
    expect(parseDerSignature(Uint8Array.of(0x30, 6, 2, 1, 0, 2, 1, 1))).toBeUndefined();
  });
});

describe('public key cache', () => {
  it('stays bounded and answers the same after eviction', () => {
    const verifier = createMessageVerifier(nativeBackend, 2);
    const { signed_string, sig_b64 } = vectors.fill;
    for (let round = 0; round < 3; round++) {
      expect(verifier.verify(taker.pub, sig_b64, signed_string)).toBe(true);
      expect(verifier.verify(maker.pub, sig_b64, signed_string)).toBe(false);
      expect(verifier.verify('02' + '00'.repeat(32), sig_b64, signed_string)).toBe(false);
    }
  });

  it('hands out copies: a caller mutating a parsed key does not poison the cache', () => {
    const first = parsePublicKeyHex(taker.pub);
    expect(first).toBeDefined();
    first?.fill(0);
    expect(parsePublicKeyHex(taker.pub)).toEqual(hex(taker.pub));
    expect(verifyMessage(taker.pub, vectors.fill.sig_b64, vectors.fill.signed_string)).toBe(true);
  });
});
