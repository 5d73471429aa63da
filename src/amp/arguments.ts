/**
 * Argument types of JoinMarket's AMP commands and how each is written into a box
 * (twisted/protocols/amp.py `Integer`, `String`, `Unicode`, `Boolean`, `ListOf`; jmbase/bigstring.py
 * `BigUnicode`; jmbase/arguments.py `JsonEncodable`). Pure.
 *
 * | type          | JS value     | box value(s)                                                   |
 * |---------------|--------------|----------------------------------------------------------------|
 * | Integer       | `number`     | decimal ASCII (`-12`)                                          |
 * | String        | `Uint8Array` | the raw bytes                                                  |
 * | Unicode       | `string`     | UTF-8                                                          |
 * | Boolean       | `boolean`    | `True` / `False`                                               |
 * | JsonEncodable | `JsonValue`  | Python `json.dumps` text (`", "`, `": "`, ASCII only)          |
 * | BigUnicode    | `string`     | UTF-8 cut every 65,535 bytes under `name.0`, `name.1`, ...;    |
 * |               |              | read back until the first missing or empty `name.N`; `""` is   |
 * |               |              | no key at all                                                  |
 * | ListOf(Unicode) | `string[]` | each element as u16 BE length + UTF-8, concatenated            |
 */
import { AMP_MAX_VALUE_BYTES, type AmpBox } from './box.js';
import { AmpError } from './errors.js';
import { exceedsJsonNestingDepth } from '../wire/envelope.js';
import { pyJsonString } from '../wire/pyjson.js';

/**
 * Deepest nesting of a JsonEncodable value read or written: the top-level value has depth 0 and
 * each list or object adds 1 for its members (the rule of `exceedsJsonNestingDepth`,
 * src/wire/envelope.ts). JoinMarket's values nest 3 deep at most (JMTXReceived's `offer`, a
 * maker's `utxos` by outpoint); an AMP value of 65,535 bytes could nest 32,000 deep, more than
 * the recursion that serialises it can take.
 */
export const AMP_MAX_JSON_NESTING_DEPTH = 10;

/** The argument types JoinMarket's 26 commands use. */
export type AmpArgumentType =
  'Integer' | 'String' | 'Unicode' | 'Boolean' | 'JsonEncodable' | 'BigUnicode' | 'ListOfUnicode';

/** A JSON value as `JSON.parse` returns it. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };

/** The JS type of each argument type. */
export interface AmpArgumentValues {
  Integer: number;
  String: Uint8Array;
  Unicode: string;
  Boolean: boolean;
  JsonEncodable: JsonValue;
  BigUnicode: string;
  ListOfUnicode: string[];
}

// ignoreBOM: a leading U+FEFF is kept, as Python's bytes.decode('utf-8') (AMP's Unicode) keeps it.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function badArgument(name: string, message: string): AmpError {
  return new AmpError('ERR_AMP_BAD_ARGUMENT', `argument "${name}": ${message}`);
}

function decodeUtf8(name: string, bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw badArgument(name, 'not UTF-8');
  }
}

/**
 * Python's float `repr` (shortest round-trip digits; exponent form below 1e-4 and from 1e16),
 * so re-serialised JSON numbers read back as the client wrote them: `1e-05`, `1.5`, `1e+16`.
 */
export function pyFloatRepr(n: number): string {
  if (!Number.isFinite(n)) throw new TypeError(`JSON cannot carry ${String(n)}`);
  if (Number.isInteger(n) && Math.abs(n) < 1e16) return BigInt(n).toString();
  const [mantissa = '0', expText = '0'] = n.toExponential().split('e');
  const exp = Number(expText);
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace('-', '').replace('.', '');
  let out: string;
  if (exp >= -4 && exp < 16) {
    if (exp < 0) out = `0.${'0'.repeat(-exp - 1)}${digits}`;
    else if (digits.length > exp + 1) out = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
    else out = `${digits}${'0'.repeat(exp + 1 - digits.length)}.0`;
  } else {
    const m = digits.length > 1 ? `${digits.slice(0, 1)}.${digits.slice(1)}` : digits;
    const sign = exp < 0 ? '-' : '+';
    out = `${m}e${sign}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  return negative ? `-${out}` : out;
}

/**
 * Serialises a JSON value as Python's `json.dumps` with default arguments (separators `", "` and
 * `": "`, `ensure_ascii`); numbers as Python prints them ({@link pyFloatRepr}).
 * @throws TypeError for non-finite numbers or values JSON cannot carry; AmpError
 *   `ERR_AMP_BAD_ARGUMENT` for a value nesting deeper than {@link AMP_MAX_JSON_NESTING_DEPTH}.
 */
export function pyJsonDumpsValue(value: unknown): string {
  return dumps(value, 0);
}

/** {@link pyJsonDumpsValue} of a value enclosed by `depth` lists and objects. */
function dumps(value: unknown, depth: number): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return pyJsonString(value);
    case 'number':
      return pyFloatRepr(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      const members = Array.isArray(value) ? value : Object.entries(value);
      if (members.length > 0 && depth >= AMP_MAX_JSON_NESTING_DEPTH)
        throw new AmpError(
          'ERR_AMP_BAD_ARGUMENT',
          `JSON value nests deeper than ${AMP_MAX_JSON_NESTING_DEPTH}`,
        );
      if (Array.isArray(value)) return `[${value.map((v) => dumps(v, depth + 1)).join(', ')}]`;
      return `{${Object.entries(value as Record<string, unknown>)
        .map(([k, v]) => `${pyJsonString(k)}: ${dumps(v, depth + 1)}`)
        .join(', ')}}`;
    }
    default:
      throw new TypeError(`JSON cannot carry a ${typeof value}`);
  }
}

/** Splits bytes into chunks of at most `size` bytes (jmbase/bigstring.py `split_string`). */
function chunks(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

/** Encodes a list of strings as Twisted's `ListOf(Unicode())`: u16 BE length + UTF-8 each. */
export function encodeListOfUnicode(items: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (const item of items) {
    const bytes = Buffer.from(item, 'utf8');
    if (bytes.length > AMP_MAX_VALUE_BYTES)
      throw new AmpError('ERR_AMP_TOO_LONG', `list element of ${bytes.length} bytes`);
    const header = Buffer.alloc(2);
    header.writeUInt16BE(bytes.length);
    parts.push(header, bytes);
  }
  return Buffer.concat(parts);
}

/**
 * Decodes Twisted's `ListOf(Unicode())`.
 * @throws AmpError `ERR_AMP_TRUNCATED` when an element is cut short; `ERR_AMP_BAD_ARGUMENT` for
 *   an element that is not UTF-8.
 */
export function decodeListOfUnicode(name: string, bytes: Uint8Array): string[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const items: string[] = [];
  let offset = 0;
  while (offset < buf.length) {
    if (buf.length < offset + 2)
      throw new AmpError('ERR_AMP_TRUNCATED', `argument "${name}": list element length cut short`);
    const length = buf.readUInt16BE(offset);
    if (buf.length < offset + 2 + length)
      throw new AmpError('ERR_AMP_TRUNCATED', `argument "${name}": list element cut short`);
    items.push(decodeUtf8(name, buf.subarray(offset + 2, offset + 2 + length)));
    offset += 2 + length;
  }
  return items;
}

/**
 * Writes argument `name` of type `type` into `box`.
 * @throws AmpError `ERR_AMP_TOO_LONG` for a non-Big value over 65,535 bytes; TypeError for a JS
 *   value of the wrong type (a programming error).
 */
export function writeArgument<T extends AmpArgumentType>(
  box: AmpBox,
  name: string,
  type: T,
  value: AmpArgumentValues[T],
): void {
  let bytes: Buffer;
  switch (type) {
    case 'Integer': {
      const n = value as number;
      if (!Number.isSafeInteger(n)) throw new TypeError(`argument "${name}" must be an integer`);
      bytes = Buffer.from(String(n), 'ascii');
      break;
    }
    case 'String':
      bytes = Buffer.from(value as Uint8Array);
      break;
    case 'Unicode':
      bytes = Buffer.from(value as string, 'utf8');
      break;
    case 'Boolean':
      bytes = Buffer.from((value as boolean) ? 'True' : 'False', 'ascii');
      break;
    case 'JsonEncodable':
      bytes = Buffer.from(pyJsonDumpsValue(value), 'ascii');
      break;
    case 'ListOfUnicode':
      bytes = encodeListOfUnicode(value as string[]);
      break;
    case 'BigUnicode': {
      const all = Buffer.from(value as string, 'utf8');
      chunks(all, AMP_MAX_VALUE_BYTES).forEach((chunk, i) => box.set(`${name}.${i}`, chunk));
      return;
    }
    default:
      throw new TypeError(`unknown AMP argument type ${String(type)}`);
  }
  if (bytes.length > AMP_MAX_VALUE_BYTES)
    throw new AmpError(
      'ERR_AMP_TOO_LONG',
      `argument "${name}" is ${bytes.length} bytes (a ${type} holds at most 65,535)`,
    );
  box.set(name, bytes);
}

const INTEGER_RE = /^[+-]?[0-9]+$/;

/**
 * Reads argument `name` of type `type` from `box`.
 * @throws AmpError `ERR_AMP_BAD_ARGUMENT` when it is missing (BigUnicode: read as `""`) or does
 *   not parse, or is JSON nesting deeper than {@link AMP_MAX_JSON_NESTING_DEPTH};
 *   `ERR_AMP_TRUNCATED` for a cut-short list.
 */
export function readArgument<T extends AmpArgumentType>(
  box: AmpBox,
  name: string,
  type: T,
): AmpArgumentValues[T] {
  if (type === 'BigUnicode') {
    const parts: Buffer[] = [];
    for (let i = 0; ; i++) {
      const part = box.get(`${name}.${i}`);
      if (part === undefined || part.length === 0) break;
      parts.push(part);
    }
    return decodeUtf8(name, Buffer.concat(parts)) as AmpArgumentValues[T];
  }
  const raw = box.get(name);
  if (raw === undefined) throw badArgument(name, 'missing');
  switch (type) {
    case 'Integer': {
      const text = raw.toString('latin1');
      if (!INTEGER_RE.test(text)) throw badArgument(name, `"${text}" is not an integer`);
      const n = Number(text);
      if (!Number.isSafeInteger(n)) throw badArgument(name, `${text} is out of range`);
      return n as AmpArgumentValues[T];
    }
    case 'String':
      return Buffer.from(raw) as unknown as AmpArgumentValues[T];
    case 'Unicode':
      return decodeUtf8(name, raw) as AmpArgumentValues[T];
    case 'Boolean': {
      const text = raw.toString('latin1');
      if (text === 'True') return true as AmpArgumentValues[T];
      if (text === 'False') return false as AmpArgumentValues[T];
      throw badArgument(name, `"${text}" is not True or False`);
    }
    case 'JsonEncodable': {
      const text = decodeUtf8(name, raw);
      // Refused before parsing: whatever handles the value (pyJsonDumpsValue, JSON.stringify)
      // recurses once per level.
      if (exceedsJsonNestingDepth(text, AMP_MAX_JSON_NESTING_DEPTH))
        throw badArgument(name, `nests deeper than ${AMP_MAX_JSON_NESTING_DEPTH}`);
      try {
        return JSON.parse(text) as AmpArgumentValues[T];
      } catch {
        throw badArgument(name, 'not JSON');
      }
    }
    case 'ListOfUnicode':
      return decodeListOfUnicode(name, raw) as AmpArgumentValues[T];
    default:
      throw new TypeError(`unknown AMP argument type ${String(type)}`);
  }
}
