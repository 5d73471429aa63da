/**
 * Fuzz properties of src/message: privmsg parsing and signature checks, the strict hex and
 * base64 decoders, NaCl box decoding and the JMP-0005 nick-auth codec.
 */
import { Buffer } from 'node:buffer';
import { isDeepStrictEqual } from 'node:util';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import fc from 'fast-check';
import nacl from 'tweetnacl';
import { ENCRYPTED_COMMANDS, PLAINTEXT_COMMANDS } from '../../../src/message/commands.js';
import {
  decryptFromWire,
  encryptToWire,
  generateBoxKeyPair,
  parseBoxPublicKeyHex,
  type BoxKeyPair,
} from '../../../src/message/nacl-box.js';
import {
  buildNickAuthChallengeLine,
  buildNickAuthProofLine,
  buildNickAuthResultLine,
  parseNickAuthChallengeLine,
  parseNickAuthProofLine,
  parseNickAuthResultLine,
  signNickAuth,
  verifyNickAuth,
  type NickAuthResultCode,
} from '../../../src/message/nick-auth.js';
import { createNickIdentity, type NickIdentity } from '../../../src/message/nick.js';
import { parseChannelLine, signPrivmsg, verifyPrivmsg } from '../../../src/message/privmsg.js';
import {
  decodeBase64Strict,
  decodeHexStrict,
  encodeBase64,
  parsePublicKeyHex,
  verifyMessage,
} from '../../../src/message/signing.js';
import {
  fuzzProperty,
  onlyTyped,
  unicodeString,
  utf16String,
  type FuzzProperty,
} from '../property.js';

/** A few fixed nick identities (key generation is the slow part; fixed keys keep runs cheap). */
let identities: NickIdentity[] | undefined;
function someIdentities(): NickIdentity[] {
  identities ??= [1, 2, 3].map((n) => createNickIdentity(new Uint8Array(32).fill(n)));
  return identities;
}

let boxKeys: BoxKeyPair[] | undefined;
function someBoxKeys(): BoxKeyPair[] {
  boxKeys ??= [0, 1, 2].map(() => generateBoxKeyPair());
  return boxKeys;
}

const COMMANDS = [...PLAINTEXT_COMMANDS, ...ENCRYPTED_COMMANDS];

/** One character replaced by another, inserted or removed at a random place. */
function mutate(text: string, at: number, mode: number, ch: string): string {
  const i = at % (text.length + 1);
  switch (mode % 3) {
    case 0: {
      const old = text.charAt(i);
      const replacement = old === ch ? (ch === 'A' ? 'B' : 'A') : ch;
      return text.slice(0, i) + replacement + text.slice(i + 1);
    }
    case 1:
      return text.slice(0, i) + ch + text.slice(i);
    default:
      return text.length === 0 ? 'x' : text.slice(0, i) + text.slice(i + 1);
  }
}

const mutation = fc.tuple(
  fc.nat(),
  fc.nat(),
  fc.constantFrom('A', 'a', '0', '=', '+', '/', ' ', '!', '"', '\\', '{', '}', ',', 'é', '\u0000'),
);

// ---------------------------------------------------------------------------------------------
// Privmsg parsing and signature checks

const hexToken = fc.oneof(
  fc.uint8Array({ maxLength: 40 }).map(bytesToHex),
  fc
    .constantFrom('02', '03', '04')
    .chain((p) => fc.uint8Array({ minLength: 32, maxLength: 64 }).map((b) => p + bytesToHex(b))),
  fc.string({ unit: fc.constantFrom('0', 'f', 'F', 'g', 'x'), maxLength: 8 }),
);
const base64Token = fc.oneof(
  fc.uint8Array({ maxLength: 80 }).map(encodeBase64),
  fc.string({ unit: fc.constantFrom('A', '/', '+', '=', 'z', '-'), maxLength: 12 }),
);
const privmsgMessage = fc
  .tuple(
    fc.oneof(fc.constantFrom(...COMMANDS, 'tbond', 'cancel'), fc.string({ maxLength: 6 })),
    fc.array(fc.oneof(utf16String({ maxLength: 10 }), base64Token), { maxLength: 4 }),
    hexToken,
    base64Token,
    fc.boolean(),
  )
  .map(
    ([cmd, body, pub, sig, bang]) => `${bang ? '!' : ''}${cmd} ${[...body, pub, sig].join(' ')}`,
  );
const channelLine = fc.oneof(
  fc
    .tuple(utf16String({ maxLength: 18 }), utf16String({ maxLength: 18 }), privmsgMessage)
    .map(([from, to, message]) => `${from}!${to}${message.startsWith('!') ? '' : '!'}${message}`),
  fc.string({ unit: fc.constantFrom('!', 'J', ' ', 'a'), maxLength: 20 }),
  utf16String({ maxLength: 40 }),
);

/** A signed privmsg's parts; bodies are any non-empty text. */
const signedPrivmsgParts = fc.record({
  who: fc.nat(2),
  to: utf16String({ minLength: 1, maxLength: 18 }).filter((s) => !s.includes('!')),
  cmd: fc.constantFrom(...COMMANDS),
  body: utf16String({ minLength: 1, maxLength: 60 }),
});

const privmsgProperties: FuzzProperty[] = [
  fuzzProperty({
    name: 'privmsg: parseChannelLine and verifyPrivmsg of any line never throw; a parsed line rebuilds to itself',
    runs: 100_000,
    property: () =>
      fc.property(channelLine, (line) => {
        const parsed = parseChannelLine(line);
        if (parsed === undefined) return true;
        if (`${parsed.from}!${parsed.to}${parsed.message}` !== line) return false;
        const v = verifyPrivmsg(parsed.from, parsed.message);
        return !v.ok;
      }),
  }),
  fuzzProperty({
    name: 'privmsg: a signed privmsg parses and verifies to its cmd and body; one changed character fails it',
    runs: 2_000,
    property: () =>
      fc.property(signedPrivmsgParts, mutation, ({ who, to, cmd, body }, [at, mode, ch]) => {
        const id = someIdentities()[who]!;
        const line = signPrivmsg(id, to, cmd, body);
        const parsed = parseChannelLine(line);
        if (parsed?.from !== id.nick || parsed.to !== to) return false;
        const v = verifyPrivmsg(parsed.from, parsed.message);
        if (!v.ok || v.cmd !== cmd || v.body !== body || v.publicKeyHex !== id.publicKeyHex) {
          return false;
        }
        // Change the signed part: everything after the command word (body, pubkey, signature).
        const signedStart = parsed.message.indexOf(' ') + 1;
        const tail = parsed.message.slice(signedStart);
        const changed = mutate(tail, at, mode, ch);
        if (changed === tail) return true;
        const forged = verifyPrivmsg(parsed.from, parsed.message.slice(0, signedStart) + changed);
        return !forged.ok;
      }),
  }),
  fuzzProperty({
    name: 'signing: strict hex/base64 decoders are canonical; verifyMessage and parsePublicKeyHex never throw',
    runs: 50_000,
    property: () =>
      fc.property(
        fc.uint8Array({ maxLength: 80 }),
        base64Token,
        hexToken,
        utf16String({ maxLength: 20 }),
        fc.boolean(),
        (bytes, b64, hex, message, lowS) => {
          if (!isDeepStrictEqual(decodeBase64Strict(encodeBase64(bytes)), bytes)) return false;
          const decoded = decodeBase64Strict(b64);
          if (decoded !== undefined && encodeBase64(decoded) !== b64) return false;
          const h = decodeHexStrict(hex);
          if (h !== undefined && bytesToHex(h) !== hex.toLowerCase()) return false;
          parsePublicKeyHex(hex);
          return typeof verifyMessage(hex, b64, message, { requireLowS: lowS }) === 'boolean';
        },
      ),
  }),
  fuzzProperty({
    name: 'signing: a signature verifies; its high-S twin only without requireLowS; on another message never',
    runs: 600,
    property: () =>
      fc.property(fc.nat(2), unicodeString({ maxLength: 40 }), (who, message) => {
        const id = someIdentities()[who]!;
        const sig = id.sign(message);
        if (!verifyMessage(id.publicKeyHex, sig, message)) return false;
        if (verifyMessage(id.publicKeyHex, sig, `${message}x`)) return false;
        const s = secp256k1.Signature.fromBytes(decodeBase64Strict(sig)!, 'der');
        const high = new secp256k1.Signature(s.r, secp256k1.Point.CURVE().n - s.s);
        const highB64 = encodeBase64(high.toBytes('der'));
        return (
          verifyMessage(id.publicKeyHex, highB64, message) &&
          !verifyMessage(id.publicKeyHex, highB64, message, { requireLowS: true })
        );
      }),
  }),
];

// ---------------------------------------------------------------------------------------------
// NaCl box

const naclWire = fc.oneof(
  fc.uint8Array({ maxLength: 120 }).map(encodeBase64),
  base64Token,
  utf16String({ maxLength: 60 }),
);

/** Plaintext bytes: ASCII, valid UTF-8, and the sequences strict UTF-8 refuses. */
const plaintextPiece = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map((b) => [b]) },
  { weight: 2, arbitrary: unicodeString({ maxLength: 2 }).map((s) => [...Buffer.from(s, 'utf8')]) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      [0xc0, 0x80], // overlong NUL
      [0xc0],
      [0xc1, 0xbf],
      [0xed, 0xa0, 0x80], // an encoded surrogate
      [0xed, 0xbf, 0xbf],
      [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
      [0xf5],
      [0xff],
      [0x80],
      [0xe2, 0x82], // cut short
      [0xf0, 0x9f, 0x98],
      [0xef, 0xbb, 0xbf], // U+FEFF (a BOM when first)
    ),
  },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }).map((b) => [b]) },
);
const plaintextBytes = fc
  .array(plaintextPiece, { maxLength: 30 })
  .map((pieces) => Uint8Array.from(pieces.flat()));

/** Strict UTF-8 of `bytes`, a leading U+FEFF kept (as Python's `bytes.decode('utf-8')`), or undefined. */
function strictUtf8(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** Boxes `plain` with tweetnacl directly (bob's key, alice's secret): the wire text. */
function boxBytes(plain: Uint8Array, nonce: Uint8Array, to: BoxKeyPair, from: BoxKeyPair): string {
  const boxed = nacl.box(plain, nonce, to.publicKey, from.secretKey);
  return encodeBase64(Buffer.concat([nonce, boxed]));
}

const BOM = [0xef, 0xbb, 0xbf];

const naclProperties: FuzzProperty[] = [
  fuzzProperty({
    name: 'nacl-box: decryptFromWire of any text throws only ERR_CRYPTO; parseBoxPublicKeyHex likewise',
    runs: 8_000,
    property: () =>
      fc.property(naclWire, fc.nat(2), fc.nat(2), hexToken, (wire, a, b, hex) => {
        const keys = someBoxKeys();
        onlyTyped('decryptFromWire', ['ERR_CRYPTO'], () =>
          decryptFromWire(wire, keys[a]!.publicKey, keys[b]!.secretKey),
        );
        const r = onlyTyped('parseBoxPublicKeyHex', ['ERR_CRYPTO'], () =>
          parseBoxPublicKeyHex(hex),
        );
        return !r.ok || bytesToHex(r.value) === hex.toLowerCase();
      }),
  }),
  fuzzProperty({
    name: 'nacl-box: decrypt(encrypt(text)) is the text; any changed byte or wrong key gives ERR_CRYPTO',
    runs: 2_000,
    property: () =>
      fc.property(
        unicodeString({ maxLength: 80 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (text, at, flip) => {
          const [alice, bob, carol] = someBoxKeys() as [BoxKeyPair, BoxKeyPair, BoxKeyPair];
          const wire = encryptToWire(text, bob.publicKey, alice.secretKey);
          if (decryptFromWire(wire, alice.publicKey, bob.secretKey) !== text) return false;
          const bytes = decodeBase64Strict(wire)!;
          bytes[at % bytes.length]! ^= flip;
          const tampered = onlyTyped('decryptFromWire', ['ERR_CRYPTO'], () =>
            decryptFromWire(encodeBase64(bytes), alice.publicKey, bob.secretKey),
          );
          const wrongKey = onlyTyped('decryptFromWire', ['ERR_CRYPTO'], () =>
            decryptFromWire(wire, carol.publicKey, bob.secretKey),
          );
          return !tampered.ok && !wrongKey.ok;
        },
      ),
  }),
  fuzzProperty({
    name: 'nacl-box: a box of any plaintext bytes (overlong, surrogates, cut short) decrypts to their UTF-8 text or throws ERR_CRYPTO',
    runs: 6_000,
    property: () =>
      fc.property(
        plaintextBytes,
        fc.uint8Array({ minLength: 24, maxLength: 24 }),
        (plain, nonce) => {
          const [alice, bob] = someBoxKeys() as [BoxKeyPair, BoxKeyPair];
          const wire = boxBytes(plain, nonce, bob, alice);
          const r = onlyTyped('decryptFromWire', ['ERR_CRYPTO'], () =>
            decryptFromWire(wire, alice.publicKey, bob.secretKey),
          );
          const text = strictUtf8(plain);
          return text === undefined ? !r.ok : r.ok && r.value === text;
        },
      ),
  }),
  // decryptFromWire once stripped a leading U+FEFF (TextDecoder's default ignoreBOM: false),
  // where Python's bytes.decode('utf-8') and ng keep it; random plaintexts seldom start with one.
  fuzzProperty({
    name: 'nacl-box: a plaintext starting with U+FEFF decrypts with its U+FEFF',
    runs: 1_000,
    property: () =>
      fc.property(plaintextBytes, (rest) => {
        const [alice, bob] = someBoxKeys() as [BoxKeyPair, BoxKeyPair];
        const plain = Uint8Array.from([...BOM, ...rest]);
        const text = strictUtf8(plain);
        const wire = boxBytes(plain, new Uint8Array(24), bob, alice);
        const r = onlyTyped('decryptFromWire', ['ERR_CRYPTO'], () =>
          decryptFromWire(wire, alice.publicKey, bob.secretKey),
        );
        return text === undefined ? !r.ok : r.ok && r.value === text;
      }),
  }),
];

// ---------------------------------------------------------------------------------------------
// Nick-auth (JMP-0005) codec

const RESULT_CODES: NickAuthResultCode[] = ['ok', 'malformed', 'expired', 'invalid', 'policy'];
const lowerHex64 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(bytesToHex);
const directoryId = fc.oneof(
  fc.constant('abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion:5222'),
  fc
    .tuple(
      fc.constantFrom('a', '0', 'z'),
      fc.string({ unit: fc.constantFrom('a', '9', '.', ':', '_', '-'), maxLength: 12 }),
    )
    .map(([h, t]) => h + t),
);

/** Flat JSON objects over the nick-auth keys, with random values, whitespace and duplicates. */
const nickAuthJsonText = fc
  .tuple(
    fc.array(
      fc.tuple(
        fc.constantFrom(
          'challenge',
          'directory-id',
          'pubkey',
          'signature',
          'code',
          'verified',
          'x',
        ),
        fc.oneof(
          lowerHex64.map((s) => JSON.stringify(s)),
          base64Token.map((s) => JSON.stringify(s)),
          fc.constantFrom(...RESULT_CODES).map((s) => JSON.stringify(s)),
          fc.constantFrom('true', 'false', 'null', '0', '-1.5e3', '"\\u0061"', '[]', '{}', '1e999'),
          utf16String({ maxLength: 8 }).map((s) => JSON.stringify(s)),
        ),
      ),
      { maxLength: 4 },
    ),
    fc.constantFrom('', ' ', '\n\t'),
  )
  .map(
    ([pairs, ws]) => `{${ws}${pairs.map(([k, v]) => `"${k}"${ws}:${ws}${v}`).join(`,${ws}`)}${ws}}`,
  );

const nickAuthText = fc.oneof(
  nickAuthJsonText,
  fc.tuple(nickAuthJsonText, mutation).map(([t, [at, mode, ch]]) => mutate(t, at, mode, ch)),
  utf16String({ maxLength: 40 }),
);

const nickAuthProperties: FuzzProperty[] = [
  fuzzProperty({
    name: 'nick-auth: 803/807 lines parse(build(x)) = x; a parsed line rebuilds to a line that parses the same',
    runs: 60_000,
    property: () =>
      fc.property(
        lowerHex64,
        directoryId,
        fc.constantFrom(...RESULT_CODES),
        nickAuthText,
        (challenge, id, code, text) => {
          const c = { challenge, directoryId: id };
          if (!isDeepStrictEqual(parseNickAuthChallengeLine(buildNickAuthChallengeLine(c)), c)) {
            return false;
          }
          const r = parseNickAuthResultLine(buildNickAuthResultLine(code));
          if (!isDeepStrictEqual(r, { code, verified: code === 'ok' })) return false;
          const pc = parseNickAuthChallengeLine(text);
          if (pc !== undefined) {
            const line = buildNickAuthChallengeLine(pc);
            if (!isDeepStrictEqual(parseNickAuthChallengeLine(line), pc)) return false;
          }
          const pr = parseNickAuthResultLine(text);
          if (
            pr !== undefined &&
            parseNickAuthResultLine(buildNickAuthResultLine(pr.code)) === undefined
          ) {
            return false;
          }
          const pp = parseNickAuthProofLine(text);
          if (
            pp !== undefined &&
            !isDeepStrictEqual(parseNickAuthProofLine(buildNickAuthProofLine(pp)), pp)
          ) {
            return false;
          }
          return true;
        },
      ),
  }),
  fuzzProperty({
    name: 'nick-auth: a signed proof verifies ok; verifyNickAuth of any other line never throws and is never ok',
    runs: 1_500,
    property: () =>
      fc.property(
        fc.nat(2),
        lowerHex64,
        directoryId,
        utf16String({ maxLength: 30 }),
        nickAuthText,
        (who, challenge, id, handshakeLine, other) => {
          const identity = someIdentities()[who]!;
          const proof = signNickAuth(identity, challenge, id, handshakeLine);
          const line = buildNickAuthProofLine(proof);
          if (!isDeepStrictEqual(parseNickAuthProofLine(line), proof)) return false;
          if (verifyNickAuth(line, challenge, id, handshakeLine, identity.nick) !== 'ok')
            return false;
          if (
            verifyNickAuth(line, challenge, id, `${handshakeLine}x`, identity.nick) !== 'invalid'
          ) {
            return false;
          }
          return verifyNickAuth(other, challenge, id, handshakeLine, identity.nick) !== 'ok';
        },
      ),
  }),
];

/** Every property of src/message. */
export const messageProperties: readonly FuzzProperty[] = [
  ...privmsgProperties,
  ...naclProperties,
  ...nickAuthProperties,
];
