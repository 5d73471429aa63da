/**
 * Location strings and Tor v3 onion hostnames (docs/protocol.md §2.1).
 *
 * | form                 | meaning                                              |
 * |----------------------|------------------------------------------------------|
 * | `NOT-SERVING-ONION`  | the peer serves no onion (takers, docs/protocol.md §2.1)         |
 * | `<host>:<port>`      | where the peer can be dialed; normally `<v3>.onion:5222` |
 *
 * A v3 onion hostname is base32(pubkey(32) || checksum(2) || version(1)) in lowercase, 56
 * characters, then `.onion`, with checksum = SHA3-256(".onion checksum" || pubkey || 0x03)[:2]
 * (Tor rend-spec-v3, "Encoding onion addresses").
 */
import { sha3_256 } from '@noble/hashes/sha3.js';
import { base32nopad } from '@scure/base';
import { OnionmcError, ProtocolError } from '../errors.js';

/** The location a non-serving peer advertises (docs/protocol.md §2.1; R: `NOT_SERVING_ONION_HOSTNAME`). */
export const NOT_SERVING_ONION = 'NOT-SERVING-ONION';

/** The onion service's virtual port every serving peer advertises (docs/protocol.md §2.1; R: `ONION_VIRTUAL_PORT`). */
export const ONION_VIRTUAL_PORT = 5222;

/** A parsed location string (docs/protocol.md §2.1). */
export type Location = { kind: 'not-serving' } | { kind: 'hostport'; host: string; port: number };

/** Characters refused in a host: separators of peerlists (§3.1) and whitespace/control characters. */
// eslint-disable-next-line no-control-regex
const BAD_HOST_CHARS = /[,;\u0000-\u0020\u007f]/;

const PORT_DIGITS = /^[0-9]+$/;

/** Longest location string accepted, in characters: far beyond any real host name. */
const MAX_LOCATION_CHARS = 300;

/**
 * Parses a location string (docs/protocol.md §2.1; R: src/jmdaemon/onionmc.py `OnionPeer.set_location`;
 * NG: jmcore/src/jmcore/protocol.py `parse_peer_location`).
 *
 * Accepts exactly `NOT-SERVING-ONION`, or `host:port` with exactly one `:`, a non-empty host and a
 * port of decimal digits only with a value in 1..65535 (ng's upper bound; leading zeros are
 * accepted, as Python's `int()` accepts them). The host is not required to be an onion: the
 * reference accepts any host (e.g. `127.0.0.1:8081` in regtest, §11.8); use
 * {@link isV3OnionHostname} where only onions may appear. Stricter than the reference: a host with
 * `,`, `;`, whitespace or control characters, or a string over 300 characters, is refused, since it
 * could not be carried in a peerlist (§3.1) and cannot be dialed.
 *
 * @throws ProtocolError `ERR_PROTOCOL` for anything else, including `""` (which the reference also
 *   rejects, §11.8).
 */
export function parseLocation(text: string): Location {
  if (text === NOT_SERVING_ONION) return { kind: 'not-serving' };
  if (text.length > MAX_LOCATION_CHARS) throw new ProtocolError('location string too long');
  const parts = text.split(':');
  if (parts.length !== 2) throw new ProtocolError('location string is not host:port');
  const [host = '', portText = ''] = parts;
  if (host === '') throw new ProtocolError('location string has an empty host');
  if (BAD_HOST_CHARS.test(host)) throw new ProtocolError('location host has forbidden characters');
  if (!PORT_DIGITS.test(portText)) throw new ProtocolError('location port is not a decimal number');
  const port = Number(portText);
  if (port < 1 || port > 65_535) throw new ProtocolError('location port is out of range 1..65535');
  return { kind: 'hostport', host, port };
}

/**
 * Formats a location as it goes into handshakes and peerlists: `NOT-SERVING-ONION` or
 * `host:port` with the port in plain decimal (docs/protocol.md §2.1).
 */
export function formatLocation(loc: Location): string {
  return loc.kind === 'not-serving' ? NOT_SERVING_ONION : `${loc.host}:${String(loc.port)}`;
}

const V3_ONION = /^[a-z2-7]{56}\.onion$/;
const ONION_CHECKSUM_PREFIX = new TextEncoder().encode('.onion checksum');
const ONION_VERSION = 3;
const ED25519_PUBLIC_KEY_BYTES = 32;

function onionChecksum(pub: Uint8Array): Uint8Array {
  const input = new Uint8Array(ONION_CHECKSUM_PREFIX.length + ED25519_PUBLIC_KEY_BYTES + 1);
  input.set(ONION_CHECKSUM_PREFIX, 0);
  input.set(pub, ONION_CHECKSUM_PREFIX.length);
  input[input.length - 1] = ONION_VERSION;
  return sha3_256(input).subarray(0, 2);
}

/**
 * True when `host` is a Tor v3 onion hostname: 56 lowercase base32 characters `[a-z2-7]` + `.onion`
 * (ng's pattern, docs/protocol.md §2.1; NG: jmcore/src/jmcore/models.py `PeerInfo`) whose version byte is 3
 * and whose checksum is valid (Tor rend-spec-v3). Uppercase is refused, as ng refuses it. The
 * public key is not checked to be a valid ed25519 point.
 */
export function isV3OnionHostname(host: string): boolean {
  if (!V3_ONION.test(host)) return false;
  let raw: Uint8Array;
  try {
    raw = base32nopad.decode(host.slice(0, 56).toUpperCase());
  } catch {
    return false;
  }
  if (raw.length !== 35 || raw[34] !== ONION_VERSION) return false;
  const sum = onionChecksum(raw.subarray(0, ED25519_PUBLIC_KEY_BYTES));
  return raw[32] === sum[0] && raw[33] === sum[1];
}

/**
 * The v3 onion hostname (`<56 chars>.onion`, no port) of an ed25519 public key (Tor rend-spec-v3).
 *
 * @param pub the 32-byte ed25519 public key of the onion service.
 * @throws OnionmcError `ERR_CRYPTO` when `pub` is not 32 bytes long.
 */
export function onionAddressFromPublicKey(pub: Uint8Array): string {
  if (pub.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new OnionmcError(
      'ERR_CRYPTO',
      `an ed25519 public key is ${ED25519_PUBLIC_KEY_BYTES} bytes, got ${pub.length}`,
    );
  }
  const raw = new Uint8Array(35);
  raw.set(pub, 0);
  raw.set(onionChecksum(pub), 32);
  raw[34] = ONION_VERSION;
  return `${base32nopad.encode(raw).toLowerCase()}.onion`;
}
