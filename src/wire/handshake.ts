/**
 * Handshake payloads (docs/protocol.md §2.3-§2.5): the client handshake carried by type 793 and the directory
 * reply carried by type 795. Both are JSON documents serialised into the envelope's `line`
 * (double-encoded). This module encodes them byte for byte as the reference does, parses them as
 * the reference does (ignore on malformed input), and applies the reference's acceptance rules.
 *
 * Client handshake (793), keys in emitted order (docs/protocol.md §2.3; R: src/jmdaemon/onionmc.py
 * `client_handshake_json`):
 *
 * | key               | type     | value we send                              |
 * |-------------------|----------|--------------------------------------------|
 * | `app-name`        | string   | `joinmarket`                               |
 * | `directory`       | bool     | `false`                                    |
 * | `location-string` | string   | `NOT-SERVING-ONION` or `<v3>.onion:5222`   |
 * | `proto-ver`       | int      | `5`                                        |
 * | `features`        | object   | `{}` or e.g. `{"peerlist_features": true, "ping": true}` (keys sorted) |
 * | `nick`            | string   | our nick (§5.5)                            |
 * | `network`         | string   | `mainnet` / `testnet` / `signet` (§2.2)    |
 *
 * Directory handshake (795), keys in emitted order (docs/protocol.md §2.4; R: `server_handshake_json`):
 * `app-name`, `directory` (true), `proto-ver-min` (5), `proto-ver-max` (5), `features`, `accepted`,
 * `nick`, `network`, `motd`.
 */
import { parseLocation } from './location.js';
import { exceedsJsonNestingDepth } from './envelope.js';
import { pyJsonDumps, type PyJsonValue } from './pyjson.js';

/** `app-name` of every JoinMarket handshake (docs/protocol.md §2.3; R: src/jmbase/support.py `JM_APP_NAME`). */
export const JM_APP_NAME = 'joinmarket';

/** The only protocol version in use (docs/protocol.md §2.3; R: src/jmdaemon/protocol.py `JM_VERSION`). */
export const JM_PROTOCOL_VERSION = 5;

/** The reference directory's default `motd` (docs/protocol.md §2.4; R: src/jmdaemon/onionmc.py). */
export const DEFAULT_MOTD = 'Default MOTD, replace with information for the directory.';

/** A client handshake (type 793), sent by every non-directory node on connect (docs/protocol.md §2.3). */
export interface ClientHandshake {
  /** `app-name`; `joinmarket` ({@link JM_APP_NAME}). */
  appName: string;
  /** `directory`: false for clients; a parsed value is Python truthiness of whatever was sent. */
  directory: boolean;
  /** `location-string`: `NOT-SERVING-ONION` or `host:port` (§2.1). */
  locationString: string;
  /** `proto-ver`: {@link JM_PROTOCOL_VERSION}. */
  protoVer: number;
  /** `features`: a JSON object; only keys whose value is `true` count (§9.1). */
  features: Record<string, unknown>;
  /** `nick`: the sender's JoinMarket nick (§5.5); not validated by parsing. */
  nick: string;
  /** `network`: `mainnet`, `testnet`, `signet` (ng also `regtest`) (§2.2). */
  network: string;
}

/** A directory handshake reply (type 795), sent only by a directory (docs/protocol.md §2.4). */
export interface DirectoryHandshake {
  /** `app-name`; `joinmarket`. */
  appName: string;
  /** `directory`: true from a real directory; a parsed value is Python truthiness. */
  directory: boolean;
  /** `proto-ver-min`: lowest protocol version the directory speaks (5). */
  protoVerMin: number;
  /** `proto-ver-max`: highest protocol version the directory speaks (5). */
  protoVerMax: number;
  /** `features`: a JSON object (ng: `{"peerlist_features": true, "ping": true}`). */
  features: Record<string, unknown>;
  /** `accepted`: whether the directory admitted the client; a parsed value is Python truthiness. */
  accepted: boolean;
  /** `nick`: the directory's own JoinMarket nick. */
  nick: string;
  /** `network`: the directory's network. */
  network: string;
  /** `motd`: free text for people; `''` when absent or not a string (never read by the reference). */
  motd: string;
}

/** Outcome of {@link evaluateClientHandshake}. */
export type ClientHandshakeVerdict = { accepted: true } | { accepted: false; reason: string };

/** Outcome of {@link evaluateDirectoryHandshake}. */
export type DirectoryHandshakeVerdict =
  { ok: true } | { ok: false; reason: string; disconnect: boolean };

/** Characters of peer text quoted in a rejection reason, at most. */
const REASON_QUOTE_MAX_CHARS = 40;

function quote(text: string): string {
  return text.length <= REASON_QUOTE_MAX_CHARS
    ? JSON.stringify(text)
    : `${JSON.stringify(text.slice(0, REASON_QUOTE_MAX_CHARS))}...`;
}

/** Compares strings by Unicode code point, as Python's `sorted()` orders `str` keys. */
function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const ca = ia.next();
    const cb = ib.next();
    if (ca.done === true) return cb.done === true ? 0 : -1;
    if (cb.done === true) return 1;
    const d = ca.value.codePointAt(0)! - cb.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

/**
 * `features` as ng serialises it: members sorted by key (docs/protocol.md §2.3, §9.1), values as given.
 * Built member by member so that integer-like keys keep the sorted order too.
 */
function dumpFeatures(features: Record<string, unknown>): string {
  const keys = Object.keys(features).sort(compareCodePoints);
  const members = keys.map((k) => `${pyJsonDumps(k)}: ${pyJsonDumps(features[k] as PyJsonValue)}`);
  return `{${members.join(', ')}}`;
}

/** Joins pre-serialised members as Python's `json.dumps` joins a dict. */
function dumpMembers(members: readonly (readonly [string, string])[]): string {
  return `{${members.map(([k, v]) => `${pyJsonDumps(k)}: ${v}`).join(', ')}}`;
}

/**
 * Serialises a client handshake into the 793 `line` text exactly as the reference does (docs/protocol.md §2.3,
 * §11.3): Python `json.dumps` formatting, keys in the order of {@link ClientHandshake}'s table above,
 * `features` with sorted keys. Wrap it with `encodeEnvelope(MessageType.HANDSHAKE, line)`.
 *
 * @throws TypeError when a `features` value is not serialisable (see `pyJsonDumps`), or `protoVer`
 *   is not an integer.
 */
export function encodeClientHandshake(h: ClientHandshake): string {
  return dumpMembers([
    ['app-name', pyJsonDumps(h.appName)],
    ['directory', pyJsonDumps(h.directory)],
    ['location-string', pyJsonDumps(h.locationString)],
    ['proto-ver', pyJsonDumps(h.protoVer)],
    ['features', dumpFeatures(h.features)],
    ['nick', pyJsonDumps(h.nick)],
    ['network', pyJsonDumps(h.network)],
  ]);
}

/**
 * Serialises a directory handshake into the 795 `line` text exactly as the reference does
 * (docs/protocol.md §2.4, §11.3): keys app-name, directory, proto-ver-min, proto-ver-max, features, accepted,
 * nick, network, motd; `features` with sorted keys. Wrap it with
 * `encodeEnvelope(MessageType.DN_HANDSHAKE, line)`.
 *
 * @throws TypeError when a `features` value is not serialisable, or a version is not an integer.
 */
export function encodeDirectoryHandshake(h: DirectoryHandshake): string {
  return dumpMembers([
    ['app-name', pyJsonDumps(h.appName)],
    ['directory', pyJsonDumps(h.directory)],
    ['proto-ver-min', pyJsonDumps(h.protoVerMin)],
    ['proto-ver-max', pyJsonDumps(h.protoVerMax)],
    ['features', dumpFeatures(h.features)],
    ['accepted', pyJsonDumps(h.accepted)],
    ['nick', pyJsonDumps(h.nick)],
    ['network', pyJsonDumps(h.network)],
    ['motd', pyJsonDumps(h.motd)],
  ]);
}

/**
 * Python truthiness of a JSON value: `false`, `0`, `""`, `null`, `[]` and `{}` are falsy, every
 * other value truthy (the reference tests `directory` and `accepted` with plain `if`).
 */
function pyTruthy(v: unknown): boolean {
  if (v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** JSON.parse of a handshake `line` into an object, or undefined for anything else. */
function parseObject(line: string): Record<string, unknown> | undefined {
  if (exceedsJsonNestingDepth(line)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  return isJsonObject(parsed) ? parsed : undefined;
}

/** Own property or undefined (a key that is absent and one that holds no JSON value look alike). */
function get(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

/**
 * Parses a 793 `line` as the reference does (docs/protocol.md §2.5 rule 2; R: src/jmdaemon/onionmc.py
 * `process_handshake`). Returns undefined, meaning "ignore silently, send no reply", when the line
 * is not a JSON object (or nests deeper than 10), or when any of the 7 keys is missing or mistyped:
 * `proto-ver` must be an integer, `features` a JSON object (not an array or null), `nick`,
 * `network`, `location-string` and `app-name` strings. `directory` may be any JSON value and is
 * reduced to its Python truthiness. Extra keys are ignored.
 *
 * Divergences from the reference, all on garbage input: a non-string `app-name` or
 * `location-string` is ignored here, where the reference would answer `accepted: false`; `true`
 * as `proto-ver` is ignored here (Python counts a bool as an int); `5.0` counts as the integer 5.
 * Never throws.
 */
export function parseClientHandshake(line: string): ClientHandshake | undefined {
  const f = readHandshakeFields(line, CLIENT_HANDSHAKE_FIELDS);
  if (f === undefined) return undefined;
  return {
    appName: f.string('app-name'),
    directory: f.truthy('directory'),
    locationString: f.string('location-string'),
    protoVer: f.int('proto-ver'),
    features: f.object('features'),
    nick: f.string('nick'),
    network: f.string('network'),
  };
}

/** The type a handshake field must have; `truthy`: any JSON value, read as Python truthiness. */
type FieldKind = 'string' | 'int' | 'object' | 'truthy';

const CLIENT_HANDSHAKE_FIELDS: Readonly<Record<string, FieldKind>> = {
  'app-name': 'string',
  directory: 'truthy',
  'location-string': 'string',
  'proto-ver': 'int',
  features: 'object',
  nick: 'string',
  network: 'string',
};

const DIRECTORY_HANDSHAKE_FIELDS: Readonly<Record<string, FieldKind>> = {
  'app-name': 'string',
  directory: 'truthy',
  'proto-ver-min': 'int',
  'proto-ver-max': 'int',
  features: 'object',
  accepted: 'truthy',
  nick: 'string',
  network: 'string',
};

/** Typed access to the fields of a handshake that passed {@link readHandshakeFields}. */
interface HandshakeFields {
  string(key: string): string;
  int(key: string): number;
  object(key: string): Record<string, unknown>;
  truthy(key: string): boolean;
  optionalString(key: string): string | undefined;
}

/**
 * The one handshake validator of 793 and 795 (docs/protocol.md §2.2, §2.4, §2.5 rule 2): parses
 * `line` as a JSON object and checks every key of `schema` is present with its kind. Returns
 * undefined ("ignore silently") otherwise. Never throws.
 */
function readHandshakeFields(
  line: string,
  schema: Readonly<Record<string, FieldKind>>,
): HandshakeFields | undefined {
  const obj = parseObject(line);
  if (obj === undefined) return undefined;
  for (const [key, kind] of Object.entries(schema)) {
    if (!Object.hasOwn(obj, key)) return undefined;
    const value = get(obj, key);
    if (kind === 'string' && typeof value !== 'string') return undefined;
    if (kind === 'int' && !isInt(value)) return undefined;
    if (kind === 'object' && !isJsonObject(value)) return undefined;
  }
  return {
    string: (key) => get(obj, key) as string,
    int: (key) => get(obj, key) as number,
    object: (key) => get(obj, key) as Record<string, unknown>,
    truthy: (key) => pyTruthy(get(obj, key)),
    optionalString: (key) => {
      const value = get(obj, key);
      return typeof value === 'string' ? value : undefined;
    },
  };
}

/**
 * The reference directory's acceptance rule for a parsed 793 (docs/protocol.md §2.5 rule 3): rejected when
 * `app-name` is not exactly `joinmarket`, `proto-ver` is not 5, `directory` is truthy, `network`
 * differs from ours, or the location string does not parse ({@link parseLocation}). `features` is
 * not inspected; the nick format is checked separately ({@link isValidNick}). A rejection carries a
 * short reason for logs (peer text quoted up to 40 characters).
 */
export function evaluateClientHandshake(
  h: ClientHandshake,
  ours: { network: string },
): ClientHandshakeVerdict {
  if (h.appName !== JM_APP_NAME) {
    return { accepted: false, reason: `app-name ${quote(h.appName)} is not "${JM_APP_NAME}"` };
  }
  if (h.protoVer !== JM_PROTOCOL_VERSION) {
    return {
      accepted: false,
      reason: `proto-ver ${String(h.protoVer)} is not ${JM_PROTOCOL_VERSION}`,
    };
  }
  if (h.directory) return { accepted: false, reason: 'peer claims to be a directory' };
  if (h.network !== ours.network) {
    return {
      accepted: false,
      reason: `network ${quote(h.network)} does not match ours ${quote(ours.network)}`,
    };
  }
  try {
    parseLocation(h.locationString);
  } catch {
    return { accepted: false, reason: `invalid location-string ${quote(h.locationString)}` };
  }
  return { accepted: true };
}

/**
 * Parses a 795 `line` as a reference client does (docs/protocol.md §2.4; R: src/jmdaemon/onionmc.py
 * `process_handshake`, dn=True). Returns undefined ("ignore") when the line is not a JSON object or
 * any of the 8 required keys is missing or mistyped: `proto-ver-min` and `proto-ver-max` integers,
 * `features` a JSON object, `app-name`, `nick` and `network` strings; `directory` and `accepted`
 * may be any JSON value and are reduced to Python truthiness. `motd` is optional: `''` when absent
 * or not a string. Never throws.
 */
export function parseDirectoryHandshake(line: string): DirectoryHandshake | undefined {
  const f = readHandshakeFields(line, DIRECTORY_HANDSHAKE_FIELDS);
  if (f === undefined) return undefined;
  return {
    appName: f.string('app-name'),
    directory: f.truthy('directory'),
    protoVerMin: f.int('proto-ver-min'),
    protoVerMax: f.int('proto-ver-max'),
    features: f.object('features'),
    accepted: f.truthy('accepted'),
    nick: f.string('nick'),
    network: f.string('network'),
    motd: f.optionalString('motd') ?? '',
  };
}

/**
 * What a reference client does with a parsed 795 (docs/protocol.md §2.5, "Reference client receiving 795"):
 * - `accepted` false: disconnect (the reason quotes the start of the motd, where ng puts its
 *   rejection reason);
 * - `app-name` not `joinmarket`, `directory` falsy, or 5 outside [`proto-ver-min`,
 *   `proto-ver-max`]: disconnect;
 * - `network` different from ours: not handshaked, but no disconnect either;
 * - otherwise ok: the directory becomes handshaked.
 */
export function evaluateDirectoryHandshake(
  h: DirectoryHandshake,
  ours: { network: string },
): DirectoryHandshakeVerdict {
  if (!h.accepted) {
    const motd = h.motd === '' ? '' : ` (motd ${quote(h.motd)})`;
    return { ok: false, disconnect: true, reason: `directory rejected our handshake${motd}` };
  }
  if (h.appName !== JM_APP_NAME) {
    return {
      ok: false,
      disconnect: true,
      reason: `app-name ${quote(h.appName)} is not "${JM_APP_NAME}"`,
    };
  }
  if (!h.directory) {
    return {
      ok: false,
      disconnect: true,
      reason: 'dn-handshake from a peer that is not a directory',
    };
  }
  if (h.protoVerMin > JM_PROTOCOL_VERSION || h.protoVerMax < JM_PROTOCOL_VERSION) {
    return {
      ok: false,
      disconnect: true,
      reason: `protocol versions ${String(h.protoVerMin)}..${String(h.protoVerMax)} exclude ${JM_PROTOCOL_VERSION}`,
    };
  }
  if (h.network !== ours.network) {
    return {
      ok: false,
      disconnect: false,
      reason: `network ${quote(h.network)} does not match ours ${quote(ours.network)}`,
    };
  }
  return { ok: true };
}

/**
 * The one JoinMarket nick pattern (docs/protocol.md §5.5; ng's `_NICK_RE`): `J`, a version digit,
 * 14 characters of the base58 alphabet or the padding `O`. message/nick.ts re-exports it.
 */
export const NICK_PATTERN = /^J[0-9][1-9A-HJ-NP-Za-km-zO]{14}$/;

/**
 * True when `nick` has the JoinMarket nick format: `J`, a version digit, then 14 characters of the
 * base58 alphabet or the padding `O` (docs/protocol.md §5.5; NG: jmcore/src/jmcore/nick_auth.py). Says nothing
 * about whether the nick belongs to a key; that is the signature check's job (§5.6).
 */
export function isValidNick(nick: string): boolean {
  return NICK_PATTERN.test(nick);
}

/** Feature names we record: every known one fits, and they are safe inside `;F:a+b` entries. */
const FEATURE_NAME_PATTERN = /^[a-z0-9_]{1,32}$/;
/** At most this many features are recorded per peer (ng knows five). */
export const MAX_FEATURES = 16;

/**
 * The feature names a handshake advertises: the keys of `features` whose value is exactly `true`
 * (docs/protocol.md §9.1; NG: jmcore/src/jmcore/protocol.py `FeatureSet`). Names that are not lower-case
 * `[a-z0-9_]` of at most 32 characters are skipped, and at most {@link MAX_FEATURES} are kept, so a
 * peer cannot make us store or re-broadcast (in peerlists) arbitrary text.
 */
export function featuresOf(features: Record<string, unknown>): Set<string> {
  const out = new Set<string>();
  for (const [name, value] of Object.entries(features)) {
    if (out.size >= MAX_FEATURES) break;
    if (value === true && FEATURE_NAME_PATTERN.test(name)) out.add(name);
  }
  return out;
}
