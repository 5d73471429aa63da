/**
 * Signature verification benchmark: verifies the signed privmsgs of test/fixtures/vectors.json
 * (docs/protocol.md §11.6, §11.7: the fill, pubkey, offer and auth signatures) with each candidate
 * secp256k1 implementation, on one core, and prints verifies per CPU-second of this process (and
 * per wall-clock second, which other processes on the core lower).
 *
 *   npm run bench:verify -- [--seconds 2]
 *   taskset -c 1 npm run bench:verify      (pinned to one core; see docs/performance.md)
 *
 * Candidates, each given what it needs in the form it prefers, parsed once per key where the API
 * allows it (the digest is hashed outside the timed loop except for the end-to-end rows):
 * - @noble/curves: `secp256k1.verify(der, digest, compressedKey)`, what onionmc used before;
 * - Node's crypto (OpenSSL): `crypto.verify('sha256', sha256(m'), keyObject, der)`: OpenSSL hashes
 *   the single SHA-256 once more, giving the Bitcoin-message double SHA-256;
 * - `secp256k1` (libsecp256k1 native binding): `ecdsaVerify(compact, digest, uncompressedKey)`;
 * - `tiny-secp256k1` (libsecp256k1 compiled to WASM): `verify(digest, key, compact)`;
 * - onionmc's `verifyMessage` end to end (base64, DER parse, hash, key cache, verify), on the
 *   native backend and on the forced pure fallback.
 * Every loop is bounded by count and time.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import * as tiny from 'tiny-secp256k1';
import { bitcoinMessageHash } from '../src/message/hash.js';
import { HOSTID_ONION } from '../src/message/privmsg.js';
import { nobleBackend, parseDerSignature } from '../src/message/secp256k1-backend.js';
import {
  decodeBase64Strict,
  signatureBackendName,
  useSignatureBackend,
  verifyMessage,
} from '../src/message/signing.js';
import { benchOptions } from './options.js';

const USAGE = `
npm run bench:verify -- [--seconds 2]

Verifies the signed privmsgs of test/fixtures/vectors.json with each secp256k1 candidate and
prints verifies per CPU-second. Pin it to one core with taskset -c 1 (docs/performance.md).
  --seconds N   time per candidate (0.2-60)`;

const values = benchOptions('npm run bench:verify', USAGE, {
  seconds: { type: 'string', default: '2' },
});
const SECONDS = Math.min(60, Math.max(0.2, Number(values.seconds)));
const MAX_ITERATIONS = 5_000_000;

interface Vectors {
  keys: { taker: { pub: string }; maker: { pub: string } };
  fill: { body: string; sig_b64: string };
  pubkey: { body: string; sig_b64: string };
  offer_priv: { body: string; sig_b64: string };
  auth: { wire_b64: string; sig_b64: string };
}
const vectors = JSON.parse(
  fs.readFileSync(new URL('../../test/fixtures/vectors.json', import.meta.url), 'utf8'),
) as Vectors;

const { taker, maker } = vectors.keys;

/** Bitcoin's compact-size length prefix, for messages below 65,536 bytes. */
function compactSize(length: number): Buffer {
  if (length < 0xfd) return Buffer.of(length);
  const out = Buffer.alloc(3);
  out[0] = 0xfd;
  out.writeUInt16LE(length, 1);
  return out;
}
const cases = [
  { pub: taker.pub, message: vectors.fill.body + HOSTID_ONION, sig: vectors.fill.sig_b64 },
  { pub: maker.pub, message: vectors.pubkey.body + HOSTID_ONION, sig: vectors.pubkey.sig_b64 },
  {
    pub: maker.pub,
    message: vectors.offer_priv.body + HOSTID_ONION,
    sig: vectors.offer_priv.sig_b64,
  },
  { pub: taker.pub, message: vectors.auth.wire_b64 + HOSTID_ONION, sig: vectors.auth.sig_b64 },
].map((c) => {
  const der = decodeBase64Strict(c.sig) ?? new Uint8Array(0);
  const compact = parseDerSignature(der)?.compact ?? new Uint8Array(64);
  const pubBytes = Uint8Array.from(Buffer.from(c.pub, 'hex'));
  const messageBytes = Buffer.concat([
    Buffer.of(0x18),
    Buffer.from('Bitcoin Signed Message:\n'),
    compactSize(Buffer.byteLength(c.message)),
    Buffer.from(c.message),
  ]);
  return {
    ...c,
    der,
    compact,
    pubBytes,
    uncompressed: secp256k1.Point.fromBytes(pubBytes).toBytes(false),
    digest: bitcoinMessageHash(c.message),
    firstHash: crypto.createHash('sha256').update(messageBytes).digest(),
    // SubjectPublicKeyInfo of an id-ecPublicKey on secp256k1 with the compressed point.
    keyObject: crypto.createPublicKey({
      key: Buffer.concat([
        Buffer.from('3036301006072a8648ce3d020106052b8104000a032200', 'hex'),
        pubBytes,
      ]),
      format: 'der',
      type: 'spki',
    }),
  };
});

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US').padStart(7);
}

/** Runs `verifyOne` round-robin over the vectors for SECONDS; returns verifies per second. */
function measure(label: string, verifyOne: (c: (typeof cases)[number]) => boolean): number {
  for (const c of cases) {
    if (!verifyOne(c)) throw new Error(`${label} rejects a valid vector`);
  }
  const cpuStarted = process.cpuUsage();
  const started = process.hrtime.bigint();
  const budgetNs = BigInt(Math.round(SECONDS * 1e9));
  let count = 0;
  let elapsedNs = 0n;
  while (count < MAX_ITERATIONS) {
    for (let i = 0; i < 64; i++) {
      const c = cases[(count + i) % cases.length];
      if (c === undefined || !verifyOne(c)) throw new Error(`${label} failed`);
    }
    count += 64;
    elapsedNs = process.hrtime.bigint() - started;
    if (elapsedNs >= budgetNs) break;
  }
  const cpu = process.cpuUsage(cpuStarted);
  const cpuUs = cpu.user + cpu.system;
  // Per CPU-second of this process: other processes taking the core do not lower the figure.
  const perSecond = (count * 1e6) / cpuUs;
  const perWallSecond = (count * 1e9) / Number(elapsedNs);
  process.stdout.write(
    `${label.padEnd(58)} ${fmt(perSecond)} verifies/CPU-s ${(1e6 / perSecond).toFixed(1).padStart(7)} µs each (wall: ${fmt(perWallSecond)}/s)\n`,
  );
  return perSecond;
}

const require = createRequire(import.meta.url);
let native: { ecdsaVerify(sig: Uint8Array, msg: Uint8Array, pub: Uint8Array): boolean } | undefined;
try {
  native = require('secp256k1/bindings') as typeof native;
} catch (err) {
  process.stdout.write(`secp256k1 native binding not loadable: ${String(err)}\n`);
}

process.stdout.write(
  `${cases.length} signatures of vectors.json, ${SECONDS} s per candidate, one thread (pid ${process.pid}); ${process.version} on ${process.arch}\n`,
);
measure('@noble/curves verify(der, digest, compressed key)', (c) =>
  secp256k1.verify(c.der, c.digest, c.pubBytes, { prehash: false, lowS: false, format: 'der' }),
);
measure('@noble/curves verify(compact, digest, uncompressed key)', (c) =>
  secp256k1.verify(c.compact, c.digest, c.uncompressed, {
    prehash: false,
    lowS: false,
    format: 'compact',
  }),
);
measure("node:crypto verify('sha256', sha256(m'), KeyObject, der)", (c) =>
  crypto.verify('sha256', c.firstHash, c.keyObject, c.der),
);
if (native !== undefined) {
  const n = native;
  measure('secp256k1 (native) ecdsaVerify(compact, digest, uncompr.)', (c) =>
    n.ecdsaVerify(c.compact, c.digest, c.uncompressed),
  );
  measure('secp256k1 (native) ecdsaVerify(compact, digest, compr.)', (c) =>
    n.ecdsaVerify(c.compact, c.digest, c.pubBytes),
  );
}
measure('tiny-secp256k1 (WASM) verify(digest, uncompressed, compact)', (c) =>
  tiny.verify(c.digest, c.uncompressed, c.compact),
);
measure(`onionmc verifyMessage end to end (${signatureBackendName()})`, (c) =>
  verifyMessage(c.pub, c.sig, c.message),
);
useSignatureBackend(nobleBackend);
measure(`onionmc verifyMessage end to end (forced ${signatureBackendName()})`, (c) =>
  verifyMessage(c.pub, c.sig, c.message),
);
