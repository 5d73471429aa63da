/**
 * The JSON envelope every onion-channel line carries (docs/protocol.md §1.2): `{"type": <int>, "line": <str>}`.
 * Encoding reproduces the reference's bytes (Python `json.dumps`, docs/protocol.md §1.1); decoding accepts any
 * JSON object with an integer `type` and a string `line`, ignoring other keys.
 */
import { ProtocolError } from '../errors.js';
import { isSendableType, MessageType, messageTypeName } from './message-types.js';
import { pyJsonString } from './pyjson.js';

/** One decoded line: the envelope type number and its `line` text. */
export interface Envelope {
  /** Envelope type (docs/protocol.md §1.4); any integer, unknown ones included (the caller ignores those). */
  type: number;
  /** The payload text; for 793/795 a JSON document itself (docs/protocol.md §2.3). */
  line: string;
}

/**
 * Deepest JSON nesting accepted, as ng's `validate_json_nesting_depth(max_depth=10)` counts it:
 * the top-level value has depth 0 and each container adds 1 for its members, so a value at depth
 * 11 is rejected (docs/protocol.md §1.2; NG: jmcore/src/jmcore/models.py).
 */
export const MAX_JSON_NESTING_DEPTH = 10;

/** Characters of peer text quoted in an error message, at most. */
const QUOTE_MAX_CHARS = 80;

/** A JSON-quoted prefix of `text` for error messages: at most {@link QUOTE_MAX_CHARS} characters. */
function quoteStart(text: string): string {
  return text.length <= QUOTE_MAX_CHARS
    ? JSON.stringify(text)
    : `${JSON.stringify(text.slice(0, QUOTE_MAX_CHARS))}...`;
}

/**
 * True when the JSON text nests deeper than `maxDepth` by ng's rule ({@link MAX_JSON_NESTING_DEPTH}):
 * some member sits at depth `maxDepth + 1`, i.e. more than `maxDepth` containers enclose it.
 * Scans the brackets outside strings in one linear pass without recursion, so it is safe to run
 * on untrusted text before `JSON.parse`. Invalid JSON may give either answer; `JSON.parse` decides.
 */
export function exceedsJsonNestingDepth(
  text: string,
  maxDepth: number = MAX_JSON_NESTING_DEPTH,
): boolean {
  // Depth never passes the number of `{` and `[` in the text: counted natively first, so that an
  // ordinary envelope (one `{`) is not walked character by character.
  let opens = 0;
  for (const open of ['{', '[']) {
    for (let i = text.indexOf(open); i >= 0 && opens <= maxDepth; i = text.indexOf(open, i + 1))
      opens++;
  }
  if (opens <= maxDepth) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
      continue;
    }
    if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
      continue;
    }
    // Whitespace between tokens does not count as a member.
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) continue;
    // Anything else starts (or continues) a member at depth `depth`.
    if (depth > maxDepth) return true;
    if (c === 0x22) inString = true;
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) depth++;
  }
  return false;
}

/**
 * Serialises an envelope exactly as the reference does: `pyJsonDumps({type, line})`, e.g.
 * `{"type": 687, "line": "J5...!PUBLIC!orderbook"}` (docs/protocol.md §1.1, §1.2, §11.3). Frame the result with
 * `encodeLine`.
 *
 * @throws ProtocolError `ERR_PROTOCOL` when `type` is not sendable ({@link isSendableType}, docs/protocol.md §10).
 */
export function encodeEnvelope(type: number, line: string): string {
  if (!isSendableType(type)) {
    throw new ProtocolError(`refusing to send envelope type ${messageTypeName(type)}`);
  }
  // Same bytes as pyJsonDumps({ type, line }), without the generic walk: this is the relay hot path.
  return `{"type": ${type}, "line": ${pyJsonString(line)}}`;
}

/** What Python's `json.dumps` writes as it is: printable ASCII but `"` and `\`. */
const NOTHING_TO_ESCAPE = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** `{"type": 685, "line": "`: the bytes before a canonical privmsg's `line`. */
const PRIVMSG_PREFIX = Buffer.from('{"type": 685, "line": "');
/** `{"type": 687, "line": "`: the bytes before a canonical pubmsg's `line`. */
const PUBMSG_PREFIX = Buffer.from('{"type": 687, "line": "');
/** Both prefixes differ only in their last type digit, at this offset. */
const TYPE_DIGIT_AT = 11;

/** Where {@link canonicalFrame} takes its Buffer from: a reused slab (src/peer/frame-arena.ts), or plain allocation. */
export interface FrameAllocator {
  /** A Buffer of `bytes` bytes, contents undefined. */
  take(bytes: number): Buffer;
}

/** Plain allocation, the default memory of {@link canonicalFrame}. */
const NEW_BUFFERS: FrameAllocator = { take: (bytes) => Buffer.allocUnsafe(bytes) };

/** A received envelope, and whether its bytes are exactly what encoding it gives. */
export interface ReceivedEnvelope extends Envelope {
  /**
   * True when the received bytes are {@link encodeEnvelope}`(type, line)` byte for byte, so that a
   * directory node may relay them as they are ({@link canonicalFrame}; docs/protocol.md §1.2,
   * §4.4). Detected for 685 and 687 only: `{"type": <type>, "line": "<line>"}` with nothing in
   * `line` that Python's `json.dumps` escapes (only bytes 0x20-0x7e, no `"` or `\`).
   */
  readonly canonical: boolean;
}

/**
 * Decodes the bytes of one received line (without its delimiter) as an envelope: what
 * {@link decodeEnvelope}`(text.decode(raw))` gives, plus whether the bytes are canonical. A 685 or 687
 * in canonical form, what every JoinMarket peer sends, is read straight from the bytes (one
 * ASCII slice for `line`; no UTF-8 decoding of the whole line, no `JSON.parse`): the relay hot
 * path of a directory node (docs/protocol.md §4.4).
 *
 * @param text - the strict UTF-8 decoding used for every other line (a LineDecoder, whose
 *   `decode` throws ProtocolError on invalid UTF-8, or a fatal TextDecoder).
 * @throws ProtocolError what `text.decode` or {@link decodeEnvelope} throw, for lines that are not
 *   canonical.
 */
export function decodeReceivedEnvelope(
  raw: Uint8Array,
  text: { decode(raw: Uint8Array): string },
): ReceivedEnvelope {
  const prefix =
    raw[TYPE_DIGIT_AT] === 0x35 /* 5 */
      ? PRIVMSG_PREFIX
      : raw[TYPE_DIGIT_AT] === 0x37 /* 7 */
        ? PUBMSG_PREFIX
        : undefined;
  const end = raw.length - 2;
  if (
    prefix !== undefined &&
    end >= prefix.length &&
    raw[end] === 0x22 /* " */ &&
    raw[end + 1] === 0x7d /* } */ &&
    prefix.compare(raw, 0, prefix.length) === 0
  ) {
    // `line` holds no `"` (checked below), so the `"}` at the end closes it: the line is exactly
    // the bytes between, and, all printable ASCII, decodes to them one character per byte.
    const bytes = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.length);
    const line = bytes.toString('latin1', prefix.length, end);
    if (NOTHING_TO_ESCAPE.test(line)) {
      return {
        type: prefix === PRIVMSG_PREFIX ? MessageType.PRIVMSG : MessageType.PUBMSG,
        line,
        canonical: true,
      };
    }
  }
  const { type, line } = decodeEnvelope(text.decode(raw));
  return { type, line, canonical: false };
}

/**
 * The frame of a canonical received envelope ({@link ReceivedEnvelope.canonical}): its bytes,
 * CR LF, then `suffix` (another frame queued with it: one Buffer and one write instead of two and
 * a concatenation). Byte for byte what framing {@link encodeEnvelope}`(type, line)` gives.
 * @param raw - the received line, without its delimiter.
 * @param memory - where the frame's Buffer comes from (a directory node's relay takes it from a
 *   reused slab, src/peer/frame-arena.ts); default a new Buffer.
 */
export function canonicalFrame(
  raw: Uint8Array,
  suffix?: Uint8Array,
  memory: FrameAllocator = NEW_BUFFERS,
): Buffer {
  const frame = memory.take(raw.length + 2 + (suffix?.length ?? 0));
  frame.set(raw, 0);
  frame[raw.length] = 0x0d;
  frame[raw.length + 1] = 0x0a;
  if (suffix !== undefined) frame.set(suffix, raw.length + 2);
  return frame;
}

/**
 * Parses one received line as an envelope (docs/protocol.md §1.2): a JSON object whose `type` is an integer
 * and whose `line` is a string; other keys are ignored.
 *
 * Divergence: a number written as `5.0` or `5e0` counts as the integer 5 here (JavaScript has one
 * number type), where Python's `json.loads` would give a float that the reference rejects.
 *
 * @throws ProtocolError `ERR_PROTOCOL` on invalid JSON, nesting deeper than
 *   {@link MAX_JSON_NESTING_DEPTH}, a non-object, or a missing or mistyped `type` / `line`. The
 *   message quotes at most 80 characters of `text`.
 */
export function decodeEnvelope(text: string): Envelope {
  if (exceedsJsonNestingDepth(text)) {
    throw new ProtocolError(
      `envelope nests deeper than ${MAX_JSON_NESTING_DEPTH}: ${quoteStart(text)}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ProtocolError(`envelope is not valid JSON: ${quoteStart(text)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ProtocolError(`envelope is not a JSON object: ${quoteStart(text)}`);
  }
  const type: unknown = Object.hasOwn(parsed, 'type')
    ? (parsed as { type: unknown }).type
    : undefined;
  const line: unknown = Object.hasOwn(parsed, 'line')
    ? (parsed as { line: unknown }).line
    : undefined;
  if (typeof type !== 'number' || !Number.isInteger(type)) {
    throw new ProtocolError(`envelope has no integer "type": ${quoteStart(text)}`);
  }
  if (typeof line !== 'string') {
    throw new ProtocolError(`envelope has no string "line": ${quoteStart(text)}`);
  }
  return { type, line };
}
