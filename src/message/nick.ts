/**
 * JoinMarket nicks (docs/protocol.md §5.5) and the nick identity that signs privmsgs (docs/protocol.md §5.6).
 *
 * A nick is `J` + version digit `5` + base58(SHA-256(ASCII lowercase hex of the compressed
 * pubkey)[:10]), right-padded with `O` to 14 characters: 16 characters in all, matching
 * `J[0-9][1-9A-HJ-NP-Za-km-zO]{14}` (R: src/jmclient/client_protocol.py `set_nick`;
 * R: src/jmdaemon/protocol.py; NG: jmcore/src/jmcore/crypto.py). Pure apart from the random key
 * {@link createNickIdentity} draws when given none.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';
import { base58 } from '@scure/base';
import { OnionmcError } from '../errors.js';
import { NICK_PATTERN } from '../wire/handshake.js';
import { publicKeyHexFromPrivateKey, signMessage } from './signing.js';

/** First character of every JoinMarket nick (R: src/jmdaemon/protocol.py). */
export const JOINMARKET_NICK_HEADER = 'J';
/** Protocol version digit after the header; onion channel nicks are `J5…` (docs/protocol.md §5.5). */
export const JM_VERSION_DIGIT = '5';
/** How many bytes of SHA-256 go into the nick (R: `NICK_HASH_LENGTH = 10`; docs/protocol.md §5.5). */
export const NICK_HASH_LENGTH_BYTES = 10;
/** Length of the base58 part after `O` padding, in characters (R: `NICK_MAX_ENCODED = 14`). */
export const NICK_MAX_ENCODED = 14;
/** Total nick length in characters: header + version digit + {@link NICK_MAX_ENCODED}. */
export const NICK_LENGTH_CHARS = 2 + NICK_MAX_ENCODED;
/** Padding character; legal because `O` is not in the base58 alphabet (docs/protocol.md §5.5). */
const NICK_PADDING_CHAR = 'O';

const COMPRESSED_PUBKEY_HEX_RE = /^0[23][0-9a-fA-F]{64}$/;
/** ng's nick pattern (NG: jmcore/src/jmcore/nick_auth.py `_NICK_RE`): the one of wire/handshake.ts. */
export const NICK_RE = NICK_PATTERN;

/** base58 of the first 10 bytes of SHA-256 over the ASCII characters of `hex`, unpadded. */
function nickHashPart(hex: string): string {
  return base58.encode(sha256(utf8ToBytes(hex)).subarray(0, NICK_HASH_LENGTH_BYTES));
}

/**
 * Derives the nick of a compressed secp256k1 public key (docs/protocol.md §5.5, vectors §11.2).
 *
 * @param publicKeyHex - 66 hex characters starting `02`/`03`; lowercased before hashing, as the
 *   reference always hashes lowercase hex.
 * @returns the 16-character nick, e.g. `J5Ckon1LuuapPSBM` for the generator point.
 * @throws OnionmcError `ERR_CRYPTO` when `publicKeyHex` is not 66 hex characters with a
 *   compressed-key prefix.
 */
export function nickFromPublicKey(publicKeyHex: string): string {
  if (!COMPRESSED_PUBKEY_HEX_RE.test(publicKeyHex)) {
    throw new OnionmcError('ERR_CRYPTO', 'public key must be 66 hex characters starting 02 or 03');
  }
  const encoded = nickHashPart(publicKeyHex.toLowerCase()).padEnd(
    NICK_MAX_ENCODED,
    NICK_PADDING_CHAR,
  );
  return JOINMARKET_NICK_HEADER + JM_VERSION_DIGIT + encoded;
}

/**
 * The reference's nick-hash check on a signed privmsg (docs/protocol.md §5.5 "Verification"; R:
 * src/jmclient/client_protocol.py `on_JM_REQUEST_MSGSIG_VERIFY`): take `nick[2:16]`, strip every
 * `O`, and compare with base58(SHA-256(`publicKeyHex` exactly as received)[:10]).
 *
 * - The hex is hashed as received, so an uppercase pubkey fails (docs/protocol.md §11.8).
 * - The version digit is ignored, as in the reference.
 * - Tighter than the reference on purpose: the nick must also start with `J` and be exactly 16
 *   characters, which every reference and ng nick is; the reference looks only at `nick[2:16]`.
 *
 * Never throws.
 */
export function nickMatchesPublicKey(nick: string, publicKeyHex: string): boolean {
  if (nick.length !== NICK_LENGTH_CHARS || !nick.startsWith(JOINMARKET_NICK_HEADER)) return false;
  const unpadded = nick
    .slice(2, 2 + NICK_MAX_ENCODED)
    .split(NICK_PADDING_CHAR)
    .join('');
  return unpadded === nickHashPart(publicKeyHex);
}

/**
 * A nick with the key that owns it. The private key lives only in a closure of
 * {@link createNickIdentity}: it is not a property, so logging or serializing the identity cannot
 * leak it.
 */
export interface NickIdentity {
  /** The 16-character nick derived from {@link publicKeyHex} (docs/protocol.md §5.5). */
  readonly nick: string;
  /** Compressed public key, 66 lowercase hex characters (as sent in privmsgs, docs/protocol.md §5.6). */
  readonly publicKeyHex: string;
  /**
   * Signs `message` with the nick key: base64 DER over the Bitcoin message hash (docs/protocol.md §5.6; see
   * `signMessage` in signing.ts).
   */
  sign(message: string): string;
}

/**
 * Creates a nick identity. The reference makes a fresh random nick key per client protocol
 * instance (docs/protocol.md §5.5).
 *
 * @param privateKey - 32-byte secp256k1 scalar; copied, so the caller may wipe its own buffer.
 *   When omitted, a random key from noble's `secp256k1.utils.randomSecretKey()`.
 * @throws OnionmcError `ERR_CRYPTO` when `privateKey` is not a valid secp256k1 scalar.
 */
export function createNickIdentity(privateKey?: Uint8Array): NickIdentity {
  const key =
    privateKey === undefined ? secp256k1.utils.randomSecretKey() : Uint8Array.from(privateKey);
  const publicKeyHex = publicKeyHexFromPrivateKey(key);
  const nick = nickFromPublicKey(publicKeyHex);
  return Object.freeze({
    nick,
    publicKeyHex,
    sign: (message: string): string => signMessage(key, message),
  });
}
