/**
 * Peerlist payloads, the `line` of type 789 (docs/protocol.md §3.1, §11.4): entries joined by `,`, each entry
 * fields joined by `;`.
 *
 * | entry                       | meaning                                             |
 * |-----------------------------|-----------------------------------------------------|
 * | `nick;location`             | the peer is available at `location`                 |
 * | `nick;location;D`           | the peer left this directory                        |
 * | `nick;location;F:a+b`       | ng: available, with features `a` and `b` (sorted)   |
 * | `nick;location;D;F:a+b`     | ng: left, with features                             |
 *
 * Reference clients skip `F:` entries completely (docs/protocol.md §3.2), so a directory adds features only
 * for recipients that advertised `peerlist_features` (§3.4, §10). ng sends an empty line when it
 * has no peers (§3.4).
 */
import { ProtocolError } from '../errors.js';

/** One peerlist entry (docs/protocol.md §3.1). */
export interface PeerlistEntry {
  /** The peer's nick (§5.5). Not validated by decoding. */
  nick: string;
  /** The peer's location string (§2.1), e.g. `<v3>.onion:5222` or `NOT-SERVING-ONION`. Not validated by decoding. */
  location: string;
  /** True for a `;D` entry: the peer disconnected from the sending directory. */
  disconnected: boolean;
  /** ng feature names (`;F:a+b`); absent when the entry has none. */
  features?: readonly string[];
}

const ENTRY_SEPARATOR = ',';
const FIELD_SEPARATOR = ';';
const FEATURE_SEPARATOR = '+';
const DISCONNECTED_FIELD = 'D';
const FEATURES_PREFIX = 'F:';

function checkField(what: string, value: string, forbidden: readonly string[]): void {
  if (value === '') throw new ProtocolError(`peerlist ${what} is empty`);
  for (const sep of forbidden) {
    if (value.includes(sep)) throw new ProtocolError(`peerlist ${what} contains "${sep}"`);
  }
}

/** Compares by UTF-16 code unit order, which equals code point order for the ASCII names used. */
function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Serialises one entry: `nick;location`, then `;D` when disconnected, then `;F:a+b` with the
 * feature names sorted and joined by `+` when `features` is non-empty (docs/protocol.md §3.1; NG:
 * jmcore/src/jmcore/protocol.py `create_peerlist_entry`). Duplicate feature names are sent once.
 *
 * @throws ProtocolError `ERR_PROTOCOL` when the nick or location is empty or contains `,` or `;`,
 *   or a feature name is empty or contains `,`, `;` or `+`: such an entry would not parse back.
 *   Callers pass nicks checked with `isValidNick` and locations checked with `parseLocation`.
 */
export function encodePeerlistEntry(e: PeerlistEntry): string {
  checkField('nick', e.nick, [ENTRY_SEPARATOR, FIELD_SEPARATOR]);
  checkField('location', e.location, [ENTRY_SEPARATOR, FIELD_SEPARATOR]);
  let out = `${e.nick}${FIELD_SEPARATOR}${e.location}`;
  if (e.disconnected) out += `${FIELD_SEPARATOR}${DISCONNECTED_FIELD}`;
  if (e.features !== undefined && e.features.length > 0) {
    for (const f of e.features) {
      checkField('feature name', f, [ENTRY_SEPARATOR, FIELD_SEPARATOR, FEATURE_SEPARATOR]);
    }
    const names = [...new Set(e.features)].sort(byName);
    out += `${FIELD_SEPARATOR}${FEATURES_PREFIX}${names.join(FEATURE_SEPARATOR)}`;
  }
  return out;
}

/**
 * Serialises a peerlist `line`: the entries joined by `,` (docs/protocol.md §3.1); `''` for no entries.
 *
 * @throws ProtocolError as {@link encodePeerlistEntry}.
 */
export function encodePeerlist(entries: readonly PeerlistEntry[]): string {
  return entries.map(encodePeerlistEntry).join(ENTRY_SEPARATOR);
}

function parseFeatures(field: string): string[] | undefined {
  if (!field.startsWith(FEATURES_PREFIX)) return undefined;
  return field
    .slice(FEATURES_PREFIX.length)
    .split(FEATURE_SEPARATOR)
    .filter((f) => f !== '');
}

function decodeEntry(text: string): PeerlistEntry | undefined {
  const fields = text.split(FIELD_SEPARATOR);
  if (fields.length < 2 || fields.length > 4) return undefined;
  const [nick = '', location = '', third, fourth] = fields;
  if (nick === '' || location === '') return undefined;
  let disconnected = false;
  let features: string[] | undefined;
  if (fields.length === 3) {
    if (third === DISCONNECTED_FIELD) disconnected = true;
    else {
      features = parseFeatures(third ?? '');
      if (features === undefined) return undefined;
    }
  } else if (fields.length === 4) {
    if (third !== DISCONNECTED_FIELD) return undefined;
    disconnected = true;
    features = parseFeatures(fourth ?? '');
    if (features === undefined) return undefined;
  }
  const entry: PeerlistEntry = { nick, location, disconnected };
  if (features !== undefined && features.length > 0) entry.features = features;
  return entry;
}

/**
 * Parses a peerlist `line` tolerantly, as ng does (docs/protocol.md §3.1, §3.4; NG:
 * jmcore/src/jmcore/directory_client.py): entries that are empty or malformed are skipped, namely
 * fewer than 2 or more than 4 fields, an empty nick or location, a third field other than `D` or
 * `F:...`, or a 4-field entry that is not `;D;F:...`. `F:` with no names gives no `features`.
 * Nicks and locations are returned as sent; validate them before use (`isValidNick`,
 * `parseLocation`). An empty line gives `[]`. Never throws.
 *
 * Note that a reference client skips every `F:` entry (docs/protocol.md §3.2); this parser keeps them.
 */
export function decodePeerlist(line: string): PeerlistEntry[] {
  const out: PeerlistEntry[] = [];
  if (line === '') return out;
  for (const text of line.split(ENTRY_SEPARATOR)) {
    if (text === '') continue;
    const entry = decodeEntry(text);
    if (entry !== undefined) out.push(entry);
  }
  return out;
}
