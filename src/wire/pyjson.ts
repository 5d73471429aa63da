/**
 * Python-compatible JSON serialisation: `pyJsonDumps(v)` produces the same text as CPython's
 * `json.dumps(v)` with default arguments, which is what the reference JoinMarket sends on the
 * wire (docs/protocol.md §1.1: `ensure_ascii=True`, separators `", "` and `": "`).
 *
 * Byte-exact formatting matters little to receivers (any valid JSON is accepted), but it matters
 * for two things: matching the reference's bytes in tests and captures, and the ng nick-auth
 * extension, which hashes the handshake `line` string exactly as sent (§9.6).
 *
 * | JS value                | output                                               |
 * |-------------------------|------------------------------------------------------|
 * | `null`, `true`, `false` | `null`, `true`, `false`                              |
 * | integer `number`        | decimal digits as Python prints an `int` (`1e21` -> `1000000000000000000000`, `-0` -> `0`) |
 * | other `number`          | TypeError (floats, NaN and infinities are never sent) |
 * | `string`                | `"..."`, short escapes `\" \\ \n \r \t \b \f`, every other code unit outside 0x20..0x7e as `\uXXXX` (lowercase hex; astral characters as two surrogate escapes) |
 * | array                   | `[a, b]`, empty `[]`                                 |
 * | plain object            | `{"k": v, "k2": v2}` in property order, empty `{}`   |
 */

/** A value {@link pyJsonDumps} can serialise: JSON's data model with integer numbers only. */
export type PyJsonValue =
  string | number | boolean | null | PyJsonValue[] | { [k: string]: PyJsonValue };

/** Characters Python's `ensure_ascii` encoder escapes: `"`, `\`, and anything outside 0x20..0x7e. */
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/;
/** The same class, global, for `String.prototype.replace`. */
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE_ALL = /["\\\u0000-\u001f\u007f-\uffff]/g;

/** Python's `ESCAPE_DCT` short forms (json/encoder.py). */
const SHORT_ESCAPES: Readonly<Record<string, string>> = {
  '"': '\\"',
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\b': '\\b',
  '\f': '\\f',
};

function escapeChar(ch: string): string {
  const short = SHORT_ESCAPES[ch];
  if (short !== undefined) return short;
  return '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0');
}

/**
 * Serialises a string as Python's `json.dumps` does with `ensure_ascii=True`; exported as
 * {@link pyJsonString} for hot paths that build a known object shape themselves.
 * (CPython json/encoder.py `py_encode_basestring_ascii`). Works per UTF-16 code unit, so an
 * astral character becomes its two surrogate escapes and a lone surrogate is escaped as is.
 */
export function pyJsonString(s: string): string {
  return dumpString(s);
}

function dumpString(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  return `"${s.replace(NEEDS_ESCAPE_ALL, escapeChar)}"`;
}

function dumpNumber(n: number): string {
  if (!Number.isFinite(n)) throw new TypeError(`pyJsonDumps: non-finite number ${String(n)}`);
  if (!Number.isInteger(n)) throw new TypeError(`pyJsonDumps: non-integer number ${String(n)}`);
  // BigInt prints every digit (no exponent) and maps -0 to 0, as Python's int repr does.
  return BigInt(n).toString();
}

function isPlainObject(v: object): boolean {
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function dumpValue(v: unknown, stack: object[]): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
      return dumpString(v);
    case 'number':
      return dumpNumber(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object':
      break;
    default:
      throw new TypeError(`pyJsonDumps: cannot serialise a value of type ${typeof v}`);
  }
  if (stack.includes(v)) throw new TypeError('pyJsonDumps: circular reference');
  stack.push(v);
  let out: string;
  if (Array.isArray(v)) {
    const items: string[] = [];
    for (const item of v as unknown[]) items.push(dumpValue(item, stack));
    out = `[${items.join(', ')}]`;
  } else if (isPlainObject(v)) {
    const members: string[] = [];
    for (const [k, item] of Object.entries(v)) {
      members.push(`${dumpString(k)}: ${dumpValue(item, stack)}`);
    }
    out = `{${members.join(', ')}}`;
  } else {
    throw new TypeError('pyJsonDumps: only plain objects and arrays can be serialised');
  }
  stack.pop();
  return out;
}

/**
 * Returns the text CPython's `json.dumps(value)` produces with default arguments (docs/protocol.md §1.1):
 * separators `", "` / `": "`, `ensure_ascii=True`, `true`/`false`/`null`, integers printed in full.
 *
 * Object members come out in property order. JavaScript lists integer-like keys (`"1"`, `"42"`)
 * before all other keys whatever the insertion order, so such keys do not keep insertion order;
 * no key in this protocol looks like that.
 *
 * @throws TypeError for a non-integer or non-finite number, `undefined`, a function, a symbol, a
 *   bigint, a non-plain object (Date, Map, class instance) or a circular reference. These are
 *   programming errors: the protocol never sends floats (docs/protocol.md §1.2, §2.3).
 */
export function pyJsonDumps(value: PyJsonValue): string {
  return dumpValue(value, []);
}
