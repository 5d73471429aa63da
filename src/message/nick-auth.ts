/**
 * JMP-0005 nick authentication, the ng extension of docs/protocol.md §9.6: the pure codec of the 803
 * challenge, 805 proof and 807 result `line`s, the signed string, and proof signing and checking.
 * No sockets, no timers; the session that sends these owns the 30 s timeout and the rule that any
 * 803/805/807 after the handshake ends the connection.
 *
 * | type | sender | `line` (compact JSON, keys in this order)                          |
 * |------|--------|--------------------------------------------------------------------|
 * | 803  | DN     | `{"challenge":"<64 lowercase hex>","directory-id":"<id>"}`          |
 * | 805  | client | `{"pubkey":"<66 lowercase hex, 02/03>","signature":"<b64 DER>"}`    |
 * | 807  | DN     | `{"code":"ok"\|"malformed"\|"expired"\|"invalid"\|"policy","verified":<bool>}` |
 *
 * Parsing is strict as ng's is: not JSON, a duplicate key, a missing or unknown key, a wrong type
 * or a value outside its pattern all give `undefined` (NG: jmcore/src/jmcore/nick_auth.py
 * `parse_strict_json_object`, `NickAuthChallenge`, `NickAuthProof`, `NickAuthResult`).
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { OnionmcError } from '../errors.js';
import { NICK_RE, nickFromPublicKey, type NickIdentity } from './nick.js';
import { decodeBase64Strict, parsePublicKeyHex, verifyMessage } from './signing.js';

/** Length of the random challenge, in bytes (64 lowercase hex characters on the wire; §9.6). */
export const NICK_AUTH_CHALLENGE_BYTES = 32;
/** Domain tag appended to the signed string (NG: nick_auth.py `_NICK_AUTH_DOMAIN`; §9.6). */
export const NICK_AUTH_DOMAIN = 'nick-auth-v1';

const LOWER_HEX_64_RE = /^[0-9a-f]{64}$/;
const COMPRESSED_PUBKEY_RE = /^0[23][0-9a-f]{64}$/;
const DIRECTORY_ID_RE = /^[a-z0-9][a-z0-9.:_-]*$/;
const ONION_V3_HOST_RE = /^[a-z2-7]{56}\.onion$/;

/** The 803 payload. */
export interface NickAuthChallenge {
  /** 64 lowercase hex characters (32 random bytes). */
  readonly challenge: string;
  /** `directory-id` on the wire: `[a-z0-9][a-z0-9.:_-]*`, by default `<56>.onion:<port>`. */
  readonly directoryId: string;
}

/** The 805 payload. */
export interface NickAuthProof {
  /** Compressed pubkey of the nick key, 66 lowercase hex characters starting `02`/`03`. */
  readonly pubkey: string;
  /** Canonical standard base64 of a strict-DER ECDSA signature. */
  readonly signature: string;
}

/** The 807 result codes (docs/protocol.md §9.6). */
export type NickAuthResultCode = 'ok' | 'malformed' | 'expired' | 'invalid' | 'policy';

/** The 807 payload; `verified` is true exactly when `code` is `ok`. */
export interface NickAuthResult {
  readonly code: NickAuthResultCode;
  readonly verified: boolean;
}

/** What checking an 805 can conclude; `expired` and `policy` are decided by the session. */
export type NickAuthVerdict = 'ok' | 'malformed' | 'invalid';

const RESULT_CODES: ReadonlySet<string> = new Set([
  'ok',
  'malformed',
  'expired',
  'invalid',
  'policy',
]);

// ---------------------------------------------------------------------------------------------
// Strict JSON: one flat object, primitive values only, no duplicate keys.

type JsonPrimitive = string | number | boolean | null;

const WS_RE = /[ \t\n\r]*/y;
// JSON forbids raw control characters inside strings (RFC 8259 §7), hence the range below.
// eslint-disable-next-line no-control-regex
const STRING_RE = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const LITERAL_RE = /true|false|null/y;

/**
 * Parses `text` as one JSON object whose values are strings, numbers, booleans or null. Returns
 * `undefined` for invalid JSON, duplicate keys (after unescaping), nested objects or arrays (no
 * JMP-0005 field has one, so they could only fail the type checks), and anything else.
 */
function parseStrictFlatObject(text: string): Map<string, JsonPrimitive> | undefined {
  let pos = 0;
  const skipWs = (): void => {
    WS_RE.lastIndex = pos;
    WS_RE.exec(text);
    pos = WS_RE.lastIndex;
  };
  const match = (re: RegExp): string | undefined => {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (m === null) return undefined;
    pos = re.lastIndex;
    return m[0];
  };
  const readString = (): string | undefined => {
    const token = match(STRING_RE);
    return token === undefined ? undefined : (JSON.parse(token) as string);
  };
  const readValue = (): JsonPrimitive | undefined => {
    const c = text[pos];
    if (c === '"') return readString();
    const literal = match(LITERAL_RE);
    if (literal !== undefined) return JSON.parse(literal) as boolean | null;
    const number = match(NUMBER_RE);
    return number === undefined ? undefined : Number(number);
  };

  const out = new Map<string, JsonPrimitive>();
  skipWs();
  if (text[pos] !== '{') return undefined;
  pos += 1;
  skipWs();
  if (text[pos] === '}') {
    pos += 1;
  } else {
    for (;;) {
      skipWs();
      const key = readString();
      if (key === undefined || out.has(key)) return undefined;
      skipWs();
      if (text[pos] !== ':') return undefined;
      pos += 1;
      skipWs();
      const value = readValue();
      if (value === undefined) return undefined;
      out.set(key, value);
      skipWs();
      const c = text[pos];
      pos += 1;
      if (c === '}') break;
      if (c !== ',') return undefined;
    }
  }
  skipWs();
  return pos === text.length ? out : undefined;
}

/** Returns the object's fields when its keys are exactly `keys`, else `undefined`. */
function exactFields(
  line: string,
  keys: readonly string[],
): Map<string, JsonPrimitive> | undefined {
  const fields = parseStrictFlatObject(line);
  if (fields?.size !== keys.length) return undefined;
  return keys.every((k) => fields.has(k)) ? fields : undefined;
}

// ---------------------------------------------------------------------------------------------
// Field checks.

function isStrictDerSignatureBase64(signature: string): boolean {
  const der = decodeBase64Strict(signature);
  if (der === undefined) return false;
  try {
    // noble's DER parser is strict (minimal lengths and integers, no negatives, no trailing
    // bytes) and its Signature rejects r or s outside [1, n-1]: ng's `_is_strict_der_signature`.
    secp256k1.Signature.fromBytes(der, 'der');
    return true;
  } catch {
    return false;
  }
}

function isValidProofPubkey(pubkey: string): boolean {
  return COMPRESSED_PUBKEY_RE.test(pubkey) && parsePublicKeyHex(pubkey) !== undefined;
}

function fail(message: string): never {
  throw new OnionmcError('ERR_PROTOCOL', message);
}

// ---------------------------------------------------------------------------------------------
// 803 challenge.

/**
 * Makes a fresh 803 challenge: 32 random bytes as lowercase hex (docs/protocol.md §9.6).
 *
 * @throws OnionmcError `ERR_PROTOCOL` when `directoryId` does not match `[a-z0-9][a-z0-9.:_-]*`.
 */
export function createNickAuthChallenge(directoryId: string): NickAuthChallenge {
  const challenge = { challenge: bytesToHex(randomBytes(NICK_AUTH_CHALLENGE_BYTES)), directoryId };
  buildNickAuthChallengeLine(challenge);
  return challenge;
}

/**
 * Builds the 803 `line`: `{"challenge":"…","directory-id":"…"}`, compact, keys in that order.
 *
 * @throws OnionmcError `ERR_PROTOCOL` when the challenge is not 64 lowercase hex characters or the
 *   directory-id does not match `[a-z0-9][a-z0-9.:_-]*`.
 */
export function buildNickAuthChallengeLine(challenge: NickAuthChallenge): string {
  if (!LOWER_HEX_64_RE.test(challenge.challenge)) fail('challenge must be 64 lowercase hex');
  if (!DIRECTORY_ID_RE.test(challenge.directoryId)) fail('invalid directory-id');
  return JSON.stringify({
    challenge: challenge.challenge,
    'directory-id': challenge.directoryId,
  });
}

/** Parses an 803 `line` strictly; `undefined` when anything is off (see the module header). */
export function parseNickAuthChallengeLine(line: string): NickAuthChallenge | undefined {
  const fields = exactFields(line, ['challenge', 'directory-id']);
  const challenge = fields?.get('challenge');
  const directoryId = fields?.get('directory-id');
  if (typeof challenge !== 'string' || !LOWER_HEX_64_RE.test(challenge)) return undefined;
  if (typeof directoryId !== 'string' || !DIRECTORY_ID_RE.test(directoryId)) return undefined;
  return { challenge, directoryId };
}

// ---------------------------------------------------------------------------------------------
// 805 proof.

/**
 * Builds the 805 `line`: `{"pubkey":"…","signature":"…"}`, compact, keys in that order.
 *
 * @throws OnionmcError `ERR_PROTOCOL` when the pubkey is not a lowercase compressed point or the
 *   signature is not canonical base64 of strict DER.
 */
export function buildNickAuthProofLine(proof: NickAuthProof): string {
  if (!isValidProofPubkey(proof.pubkey)) fail('pubkey must be a lowercase compressed point');
  if (!isStrictDerSignatureBase64(proof.signature)) fail('signature must be base64 strict DER');
  return JSON.stringify({ pubkey: proof.pubkey, signature: proof.signature });
}

/** Parses an 805 `line` strictly; `undefined` when anything is off (see the module header). */
export function parseNickAuthProofLine(line: string): NickAuthProof | undefined {
  const fields = exactFields(line, ['pubkey', 'signature']);
  const pubkey = fields?.get('pubkey');
  const signature = fields?.get('signature');
  if (typeof pubkey !== 'string' || !isValidProofPubkey(pubkey)) return undefined;
  if (typeof signature !== 'string' || !isStrictDerSignatureBase64(signature)) return undefined;
  return { pubkey, signature };
}

// ---------------------------------------------------------------------------------------------
// 807 result.

/** Builds the 807 `line` for `code`: `{"code":"…","verified":<code === 'ok'>}`. */
export function buildNickAuthResultLine(code: NickAuthResultCode): string {
  return JSON.stringify({ code, verified: code === 'ok' });
}

/**
 * Parses an 807 `line` strictly; `undefined` when anything is off, including `verified` not being
 * exactly `code === 'ok'` (NG: `NickAuthResult.validate_result`).
 */
export function parseNickAuthResultLine(line: string): NickAuthResult | undefined {
  const fields = exactFields(line, ['code', 'verified']);
  const code = fields?.get('code');
  const verified = fields?.get('verified');
  if (typeof code !== 'string' || !RESULT_CODES.has(code)) return undefined;
  if (typeof verified !== 'boolean' || verified !== (code === 'ok')) return undefined;
  return { code: code as NickAuthResultCode, verified };
}

// ---------------------------------------------------------------------------------------------
// Signed string, signing, checking.

/** Lowercase hex SHA-256 of the UTF-8 bytes of a 793 `line` string, exactly as sent. */
export function handshakeLineSha256Hex(handshakeLine: string): string {
  return bytesToHex(sha256(utf8ToBytes(handshakeLine)));
}

/**
 * The string a JMP-0005 proof signs (docs/protocol.md §9.6; NG: `build_nick_auth_signed_message`):
 * `nick-auth|<challenge>|<directory-id>|<sha256-hex of the 793 line>|<nick>|<pubkey>nick-auth-v1`.
 * It is hashed with the Bitcoin message hash and signed with the nick key.
 *
 * @param handshakeLine - the exact 793 `line` string the client sent (not the envelope).
 * @throws OnionmcError `ERR_PROTOCOL` when the challenge is not 64 lowercase hex, the
 *   directory-id is invalid, the nick does not match `J[0-9][1-9A-HJ-NP-Za-km-zO]{14}`, or the
 *   pubkey is not a lowercase compressed point.
 */
export function nickAuthSignedString(
  challenge: string,
  directoryId: string,
  handshakeLine: string,
  nick: string,
  pubkey: string,
): string {
  if (!LOWER_HEX_64_RE.test(challenge)) fail('challenge must be 64 lowercase hex');
  if (!DIRECTORY_ID_RE.test(directoryId)) fail('invalid directory-id');
  if (!NICK_RE.test(nick)) fail('invalid nick');
  if (!isValidProofPubkey(pubkey)) fail('pubkey must be a lowercase compressed point');
  const digest = handshakeLineSha256Hex(handshakeLine);
  return `nick-auth|${challenge}|${directoryId}|${digest}|${nick}|${pubkey}${NICK_AUTH_DOMAIN}`;
}

/**
 * Answers an 803 challenge: signs {@link nickAuthSignedString} with the nick key (docs/protocol.md §9.6).
 * Format the result with {@link buildNickAuthProofLine}.
 *
 * @param handshakeLine - the exact 793 `line` string this client sent to the directory.
 * @throws OnionmcError `ERR_PROTOCOL` as {@link nickAuthSignedString}.
 */
export function signNickAuth(
  identity: NickIdentity,
  challenge: string,
  directoryId: string,
  handshakeLine: string,
): NickAuthProof {
  const message = nickAuthSignedString(
    challenge,
    directoryId,
    handshakeLine,
    identity.nick,
    identity.publicKeyHex,
  );
  return { pubkey: identity.publicKeyHex, signature: identity.sign(message) };
}

/**
 * Checks an 805 `line` as an ng directory does (NG: directory_server/src/directory_server/
 * server.py `_perform_nick_auth`; NG: nick_auth.py `verify_nick_auth_proof`):
 * - `malformed` when the line fails {@link parseNickAuthProofLine};
 * - `invalid` when the pubkey's `J5` nick is not `nick`, any expected value is itself invalid, or
 *   the signature does not verify; high-S signatures are rejected here, as coincurve
 *   (libsecp256k1 without normalization) rejects them;
 * - `ok` otherwise.
 *
 * Never throws. `expired` (the 30 s timeout) and `policy` (ownership collisions) are the
 * session's and registry's to decide.
 *
 * @param challenge - the challenge this directory sent in its 803.
 * @param directoryId - this directory's configured directory-id.
 * @param handshakeLine - the exact 793 `line` string received from this peer.
 * @param nick - the nick that 793 claimed.
 */
export function verifyNickAuth(
  proofLine: string,
  challenge: string,
  directoryId: string,
  handshakeLine: string,
  nick: string,
): NickAuthVerdict {
  const proof = parseNickAuthProofLine(proofLine);
  if (proof === undefined) return 'malformed';
  try {
    if (nickFromPublicKey(proof.pubkey) !== nick) return 'invalid';
    const message = nickAuthSignedString(challenge, directoryId, handshakeLine, nick, proof.pubkey);
    return verifyMessage(proof.pubkey, proof.signature, message, { requireLowS: true })
      ? 'ok'
      : 'invalid';
  } catch {
    return 'invalid';
  }
}

/**
 * The default directory-id of a directory reached at `host:port` (docs/protocol.md §9.6; NG:
 * `directory_id_for_endpoint`): the lower-cased `<56-char>.onion:<port>`, a trailing `.` on the
 * host dropped.
 *
 * @returns `undefined` when the host is not a v3 onion or the port is not 1-65535: such
 *   endpoints need an explicitly configured directory-id.
 */
export function directoryIdForEndpoint(host: string, port: number): string | undefined {
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  if (host === '' || host !== host.trim() || /\s/.test(host)) return undefined;
  let normalized = host.toLowerCase();
  if (normalized.endsWith('.')) normalized = normalized.slice(0, -1);
  return ONION_V3_HOST_RE.test(normalized) ? `${normalized}:${port}` : undefined;
}
