/**
 * Fuzz properties of src/wire: line framing, envelope, Python-exact JSON, handshakes 793/795,
 * peerlists and location strings.
 */
import { Buffer } from 'node:buffer';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { OnionmcError, ProtocolError } from '../../../src/errors.js';
import {
  canonicalFrame,
  decodeEnvelope,
  decodeReceivedEnvelope,
  encodeEnvelope,
  exceedsJsonNestingDepth,
  MAX_JSON_NESTING_DEPTH,
} from '../../../src/wire/envelope.js';
import { encodeLine, LineDecoder, MAX_RECEIVE_LINE_BYTES } from '../../../src/wire/framing.js';
import {
  encodeClientHandshake,
  encodeDirectoryHandshake,
  evaluateClientHandshake,
  evaluateDirectoryHandshake,
  parseClientHandshake,
  parseDirectoryHandshake,
  type ClientHandshake,
  type DirectoryHandshake,
} from '../../../src/wire/handshake.js';
import {
  formatLocation,
  isV3OnionHostname,
  NOT_SERVING_ONION,
  onionAddressFromPublicKey,
  parseLocation,
} from '../../../src/wire/location.js';
import { isSendableType, MessageType } from '../../../src/wire/message-types.js';
import {
  decodePeerlist,
  encodePeerlist,
  encodePeerlistEntry,
  type PeerlistEntry,
} from '../../../src/wire/peerlist.js';
import { pyJsonDumps, pyJsonString, type PyJsonValue } from '../../../src/wire/pyjson.js';
import {
  fuzzProperty,
  onlyTyped,
  splitAt,
  UnexpectedThrow,
  unicodeString,
  utf16String,
  type FuzzProperty,
} from '../property.js';

// ---------------------------------------------------------------------------------------------
// Line framing

/** Bytes biased towards the framing's special bytes and multi-byte UTF-8 sequences. */
const framingByte = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
  { weight: 2, arbitrary: fc.constantFrom(0x0a, 0x0d) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
);
const framingPiece = fc.oneof(
  { weight: 6, arbitrary: framingByte.map((b) => Uint8Array.of(b)) },
  { weight: 1, arbitrary: unicodeString({ maxLength: 3 }).map((s) => Buffer.from(s, 'utf8')) },
  { weight: 1, arbitrary: fc.constant(Uint8Array.of(0x0d, 0x0a)) },
);
const framingStream = fc
  .array(framingPiece, { maxLength: 200 })
  .map((pieces) => new Uint8Array(Buffer.concat(pieces)));

type FramingOutcome = { lines: string[]; error: string | undefined; buffered: number };

/**
 * What a LineDecoder must produce for `bytes`, computed on the whole stream at once: the lines of
 * {@link rawFramingModel}, decoded, up to the first that is not UTF-8.
 */
function framingModel(bytes: Uint8Array, max: number): FramingOutcome {
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const raw = rawFramingModel(bytes, max);
  const lines: string[] = [];
  for (const line of raw.lines) {
    try {
      lines.push(utf8.decode(line.bytes));
    } catch {
      return { lines, error: 'ERR_PROTOCOL', buffered: 0 };
    }
  }
  if (raw.tooLong) return { lines, error: 'ERR_LINE_TOO_LONG', buffered: 0 };
  return { lines, error: undefined, buffered: bytes.length - (raw.lines.at(-1)?.end ?? 0) };
}

/** Feeds `chunks` to a fresh decoder; the lines it returned and the code it threw, if any. */
function runDecoder(chunks: readonly Uint8Array[], max: number): FramingOutcome {
  const decoder = new LineDecoder(max);
  const lines: string[] = [];
  for (const chunk of chunks) {
    const r = onlyTyped('LineDecoder.push', ['ERR_LINE_TOO_LONG', 'ERR_PROTOCOL'], () =>
      decoder.push(chunk),
    );
    if (!r.ok) {
      // After a throw the decoder stays failed with the same error.
      const again = onlyTyped('LineDecoder.push', ['ERR_LINE_TOO_LONG', 'ERR_PROTOCOL'], () =>
        decoder.push(Uint8Array.of(0x0a)),
      );
      if (again.ok || again.error !== r.error) throw new Error('decoder did not stay failed');
      return { lines, error: r.error.code, buffered: 0 };
    }
    lines.push(...r.value);
    if (decoder.bufferedBytes > max + 1) throw new Error('decoder holds more than max + 1 bytes');
  }
  return { lines, error: undefined, buffered: decoder.bufferedBytes };
}

/** The decoder's result must not depend on how the stream is cut. */
function checkFraming(bytes: Uint8Array, cuts: number[], max: number): void {
  const want = framingModel(bytes, max);
  const got = runDecoder(splitAt(bytes, cuts), max);
  if (got.error !== want.error) {
    throw new Error(`error ${String(got.error)}, model ${String(want.error)}`);
  }
  if (want.error === undefined) {
    if (!isDeepStrictEqual(got, want)) throw new Error('lines differ from the model');
  } else if (!isDeepStrictEqual(got.lines, want.lines.slice(0, got.lines.length))) {
    // Lines completed in the failing chunk are not returned: a prefix is all we can ask.
    throw new Error('lines returned before the error are not a prefix of the model');
  }
}

const framingCuts = fc.array(fc.nat(), { maxLength: 12 });

const framingProperties: FuzzProperty[] = [
  fuzzProperty({
    name: 'framing: LineDecoder over random bytes cut anywhere equals the whole-stream model',
    runs: 120_000,
    property: () =>
      fc.property(framingStream, framingCuts, fc.integer({ min: 1, max: 40 }), (b, cuts, max) => {
        checkFraming(b, cuts, max);
      }),
  }),
  fuzzProperty({
    name: 'framing: lines around the 65,536-byte receive limit, CR and cuts anywhere',
    runs: 1_500,
    property: () =>
      fc.property(
        fc.array(
          fc.record({
            length: fc.integer({
              min: MAX_RECEIVE_LINE_BYTES - 2,
              max: MAX_RECEIVE_LINE_BYTES + 2,
            }),
            cr: fc.boolean(),
            lf: fc.boolean(),
          }),
          { minLength: 1, maxLength: 3 },
        ),
        framingCuts,
        (specs, cuts) => {
          const parts = specs.map(({ length, cr, lf }) =>
            Buffer.concat([
              Buffer.alloc(length, 0x61),
              Buffer.from((cr ? '\r' : '') + (lf ? '\n' : '')),
            ]),
          );
          checkFraming(new Uint8Array(Buffer.concat(parts)), cuts, MAX_RECEIVE_LINE_BYTES);
        },
      ),
  }),
  fuzzProperty({
    name: 'framing: encodeLine then LineDecoder gives the line back, whatever the cuts',
    runs: 50_000,
    property: () =>
      fc.property(
        fc.array(unicodeString({ maxLength: 40 }), { maxLength: 5 }),
        framingCuts,
        (texts, cuts) => {
          const lines = texts.map((t) => t.replace(/[\r\n]/g, ''));
          const bytes = new Uint8Array(Buffer.concat(lines.map(encodeLine)));
          const got = runDecoder(splitAt(bytes, cuts), MAX_RECEIVE_LINE_BYTES);
          return (
            got.error === undefined && got.buffered === 0 && isDeepStrictEqual(got.lines, lines)
          );
        },
      ),
  }),
];

// ---------------------------------------------------------------------------------------------
// Line framing, the receive path: append, nextLine, decodeReceivedEnvelope

/** One line of the raw model: its bytes without the delimiter, and where its delimiter ends. */
type RawLine = { bytes: Uint8Array; end: number };

/**
 * What `append`/`nextLine` must give for `bytes` (lines as raw bytes, no UTF-8 check: a reader
 * may skip a line undecoded), and whether a line or the tail is over `max`.
 */
function rawFramingModel(bytes: Uint8Array, max: number): { lines: RawLine[]; tooLong: boolean } {
  const lines: RawLine[] = [];
  let from = 0;
  for (;;) {
    const lf = bytes.indexOf(0x0a, from);
    if (lf === -1) break;
    let end = lf;
    if (end > from && bytes[end - 1] === 0x0d) end -= 1;
    if (end - from > max) return { lines, tooLong: true };
    lines.push({ bytes: bytes.subarray(from, end), end: lf + 1 });
    from = lf + 1;
  }
  return { lines, tooLong: bytes.length - from > max + 1 };
}

/** Envelope lines as peers send them: canonical privmsg/pubmsg, other envelopes, junk inside quotes. */
const envelopeLineBytes = fc.oneof(
  fc
    .tuple(fc.constantFrom(685, 687, 793, 1), utf16String({ maxLength: 30 }))
    .map(([type, line]) => encodeLine(pyJsonDumps({ type, line }))),
  fc
    .tuple(fc.constantFrom(685, 687), fc.uint8Array({ maxLength: 30 }), fc.boolean())
    .map(([type, bytes, cr]) =>
      Buffer.concat([
        Buffer.from(`{"type": ${type}, "line": "`),
        bytes,
        Buffer.from(cr ? '"}\r\n' : '"}\n'),
      ]),
    ),
);
const receivedStream = fc
  .array(
    fc.oneof({ weight: 4, arbitrary: framingPiece }, { weight: 1, arbitrary: envelopeLineBytes }),
    { maxLength: 120 },
  )
  .map((pieces) => new Uint8Array(Buffer.concat(pieces)));

const FRAMING_CODES = ['ERR_LINE_TOO_LONG', 'ERR_PROTOCOL'] as const;

/**
 * Plays `chunks` into one decoder as connection.ts does, with `ops` choosing append (0-3) or
 * nextLine (4-9), then appends the rest and drains. Each taken line is, by `modes`, skipped
 * undecoded (admitLine refused), decoded with `decode`, or given to decodeReceivedEnvelope, at
 * once (the view is valid until the next call). Throws on any disagreement with the model.
 */
function checkReceivePath(
  bytes: Uint8Array,
  cuts: number[],
  ops: number[],
  modes: number[],
  max: number,
): void {
  const model = rawFramingModel(bytes, max);
  const chunks = splitAt(bytes, cuts);
  const decoder = new LineDecoder(max);
  const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let appended = 0;
  let taken = 0;
  // Read through failed(): TypeScript would keep a plain `let` narrowed to undefined.
  const state: { failure: OnionmcError | undefined } = { failure: undefined };
  const failed = (): boolean => state.failure !== undefined;
  let next = 0;

  const fail = (err: OnionmcError, code: string): void => {
    if (err.code !== code) throw new Error(`threw ${err.code}, expected ${code}`);
    state.failure = err;
  };
  const append = (): void => {
    const chunk = chunks[next++]!;
    const r = onlyTyped('LineDecoder.append', [...FRAMING_CODES], () => {
      decoder.append(chunk);
    });
    if (!r.ok) throw new Error(`append threw ${r.error.code} before any state.failure`);
    appended += chunk.length;
  };
  /** Takes one line; false when none was queued or the decoder failed. */
  const take = (): boolean => {
    const r = onlyTyped('LineDecoder.nextLine', [...FRAMING_CODES], () => decoder.nextLine());
    if (!r.ok) {
      if (!model.tooLong || taken !== model.lines.length) {
        throw new Error(`nextLine threw ${r.error.code} at line ${taken}`);
      }
      fail(r.error, 'ERR_LINE_TOO_LONG');
      return false;
    }
    const view = r.value;
    if (view === undefined) return false;
    const want = model.lines[taken];
    if (want === undefined) throw new Error(`line ${taken} returned beyond the model's lines`);
    if (!Buffer.from(view).equals(want.bytes)) throw new Error(`line ${taken} differs`);
    const mode = modes.length === 0 ? 2 : modes[taken % modes.length]! % 3;
    taken++;
    if (mode === 0) return true; // skipped undecoded
    let text: string | undefined;
    try {
      text = strict.decode(want.bytes);
    } catch {
      text = undefined;
    }
    const got =
      mode === 1
        ? onlyTyped('LineDecoder.decode', ['ERR_PROTOCOL'], () => ({
            line: decoder.decode(view),
          }))
        : onlyTyped('decodeReceivedEnvelope', ['ERR_PROTOCOL'], () =>
            decodeReceivedEnvelope(view, decoder),
          );
    if (text === undefined) {
      // Not UTF-8: a typed error, and the decoder is unusable from then on.
      if (got.ok) throw new Error(`line ${taken - 1} is not UTF-8 yet was decoded`);
      fail(got.error, 'ERR_PROTOCOL');
      return false;
    }
    if (mode === 1) {
      if (!got.ok || got.value.line !== text) {
        throw new Error(`decode of line ${taken - 1} is not its UTF-8 text`);
      }
      return true;
    }
    const expected = onlyTyped('decodeEnvelope', ['ERR_PROTOCOL'], () => decodeEnvelope(text));
    if (got.ok !== expected.ok) throw new Error(`envelope ${taken - 1}: ${String(got.ok)}`);
    if (got.ok && expected.ok) {
      const v = got.value as { type: number; line: string };
      if (v.type !== expected.value.type || v.line !== expected.value.line) {
        throw new Error(`envelope ${taken - 1} differs from decodeEnvelope of its text`);
      }
    }
    return true;
  };
  const checkBuffered = (): void => {
    const consumed = taken === 0 ? 0 : model.lines[taken - 1]!.end;
    if (decoder.bufferedBytes !== appended - consumed) {
      throw new Error(`bufferedBytes ${decoder.bufferedBytes}, expected ${appended - consumed}`);
    }
  };

  for (const op of ops) {
    if (failed()) break;
    if (op < 4) {
      if (next < chunks.length) append();
    } else {
      take();
    }
    if (!failed()) checkBuffered();
  }
  while (!failed() && next < chunks.length) {
    append();
    checkBuffered();
  }
  while (!failed() && take()) checkBuffered();
  if (!failed()) {
    checkBuffered();
    if (model.tooLong) throw new Error('over-long input was not refused');
    if (taken !== model.lines.length) throw new Error(`${taken} lines of ${model.lines.length}`);
    return;
  }
  // After a state.failure every call throws the same error.
  for (const call of [
    () => decoder.nextLine(),
    () => {
      decoder.append(Uint8Array.of(0x0a));
    },
  ]) {
    try {
      call();
    } catch (err) {
      if (err === state.failure) continue;
      throw new UnexpectedThrow('LineDecoder after its state.failure', err);
    }
    throw new Error('the decoder did not stay failed');
  }
}

const receivePathProperties: FuzzProperty[] = [
  fuzzProperty({
    name: 'framing: append/nextLine with a random schedule, lines decoded at once (decode, decodeReceivedEnvelope or skipped), equal the model; bufferedBytes is appended minus taken',
    runs: 60_000,
    property: () =>
      fc.property(
        receivedStream,
        framingCuts,
        fc.array(fc.nat(9), { maxLength: 40 }),
        fc.array(fc.nat(2), { maxLength: 8 }),
        fc.oneof(fc.integer({ min: 1, max: 80 }), fc.constant(MAX_RECEIVE_LINE_BYTES)),
        (bytes, cuts, ops, modes, max) => {
          checkReceivePath(bytes, cuts, ops, modes, max);
        },
      ),
  }),
];

// ---------------------------------------------------------------------------------------------
// JSON: nesting depth, envelope, pyjson

/** JSON values with integers only: what pyJsonDumps serialises (no -0, no floats). */
const pyJsonValue: fc.Arbitrary<PyJsonValue> = fc.letrec<{ value: PyJsonValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    utf16String({ maxLength: 12 }),
    fc.maxSafeInteger().map((n) => (n === 0 ? 0 : n)),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(utf16String({ maxLength: 6 }), tie('value'), {
      maxKeys: 4,
      noNullPrototype: true,
    }),
  ),
})).value;

/** Nested arrays and objects up to depth 14, around the nesting limit of 10. */
const deepJsonValue: fc.Arbitrary<unknown> = fc
  .tuple(fc.integer({ min: 0, max: 14 }), fc.array(fc.boolean(), { maxLength: 14 }), pyJsonValue)
  .map(([depth, kinds, leaf]) => {
    let v: unknown = leaf;
    for (let i = 0; i < depth; i++) v = kinds[i] === true ? { 'k"[{': v } : [v];
    return v;
  });

/** ng's depth of a JSON value: 0 for a scalar or an empty container, else 1 + the deepest member. */
function valueDepth(v: unknown): number {
  if (typeof v !== 'object' || v === null) return 0;
  const members = Array.isArray(v) ? (v as unknown[]) : Object.values(v);
  return members.length === 0 ? 0 : 1 + Math.max(...members.map(valueDepth));
}

/** Python's json.dumps string escaping, built another way: JSON.stringify then ensure_ascii. */
function pythonString(s: string): string {
  return JSON.stringify(s).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function pythonDumps(v: PyJsonValue): string {
  if (typeof v === 'string') return pythonString(v);
  if (typeof v !== 'object' || v === null) return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(pythonDumps).join(', ')}]`;
  return `{${Object.entries(v)
    .map(([k, x]) => `${pythonString(k)}: ${pythonDumps(x)}`)
    .join(', ')}}`;
}

/** Text that is often almost JSON: JSON with one character replaced, inserted or removed. */
const mutatedJson = fc
  .tuple(
    pyJsonValue,
    fc.nat(),
    fc.nat(),
    fc.constantFrom('', '"', '\\', '{', '}', '[', ']', ',', ':', '\u0000', '\ud800'),
  )
  .map(([v, at, mode, ch]) => {
    const text = JSON.stringify(v);
    const i = at % (text.length + 1);
    switch (mode % 3) {
      case 0:
        return text.slice(0, i) + ch + text.slice(i + 1);
      case 1:
        return text.slice(0, i) + ch + text.slice(i);
      default:
        return text.slice(0, i) + text.slice(i + 1);
    }
  });

const anyJsonishText = fc.oneof(
  utf16String({ maxLength: 60 }),
  mutatedJson,
  pyJsonValue.map((v) => JSON.stringify(v)),
  fc
    .tuple(fc.integer({ min: 0, max: 3000 }), fc.constantFrom('[', '{"a":', '["\\', '"'))
    .map(([n, open]) => open.repeat(n)),
);

const sendableType = fc.constantFrom(...Object.values(MessageType));

/** Envelope texts: well-formed ones with random types and lines, plus extra keys and garbage. */
const envelopeText = fc.oneof(
  fc
    .tuple(fc.oneof(fc.integer(), fc.double(), utf16String(), fc.constant(null)), pyJsonValue)
    .map(([type, line]) => JSON.stringify({ type, line })),
  fc
    .tuple(
      fc.integer(),
      utf16String({ maxLength: 20 }),
      fc.dictionary(fc.string(), pyJsonValue, { noNullPrototype: true }),
    )
    .map(([type, line, extra]) => JSON.stringify({ ...extra, type, line })),
  anyJsonishText,
);

const jsonProperties: FuzzProperty[] = [
  fuzzProperty({
    name: 'envelope: exceedsJsonNestingDepth agrees with the depth of the parsed value',
    runs: 60_000,
    property: () =>
      fc.property(deepJsonValue, fc.constantFrom(0, 1), (v, indent) => {
        const text = JSON.stringify(v, null, indent);
        return exceedsJsonNestingDepth(text) === valueDepth(v) > MAX_JSON_NESTING_DEPTH;
      }),
  }),
  fuzzProperty({
    name: 'envelope: decodeEnvelope of any text returns {integer type, string line} or ProtocolError',
    runs: 120_000,
    property: () =>
      fc.property(envelopeText, (text) => {
        const r = onlyTyped('decodeEnvelope', ['ERR_PROTOCOL'], () => decodeEnvelope(text));
        if (!r.ok) return r.error instanceof ProtocolError;
        return Number.isInteger(r.value.type) && typeof r.value.line === 'string';
      }),
  }),
  fuzzProperty({
    name: 'envelope: decode(encode(type, line)) is identity; a decoded sendable envelope re-encodes to the same value',
    runs: 60_000,
    property: () =>
      fc.property(
        sendableType,
        utf16String({ maxLength: 80 }),
        envelopeText,
        (type, line, text) => {
          const encoded = encodeEnvelope(type, line);
          if (encoded !== pyJsonDumps({ type, line })) return false;
          if (!isDeepStrictEqual(decodeEnvelope(encoded), { type, line })) return false;
          const r = onlyTyped('decodeEnvelope', ['ERR_PROTOCOL'], () => decodeEnvelope(text));
          if (!r.ok || !isSendableType(r.value.type)) return true;
          const again = decodeEnvelope(encodeEnvelope(r.value.type, r.value.line));
          return isDeepStrictEqual(again, r.value);
        },
      ),
  }),
  fuzzProperty({
    name: 'envelope: decodeReceivedEnvelope of any received bytes equals decodeEnvelope of their UTF-8, or ProtocolError; canonical ones re-frame byte for byte',
    runs: 80_000,
    property: () =>
      fc.property(
        fc.oneof(
          envelopeText.map((text) => Buffer.from(text, 'utf8')),
          fc
            .tuple(fc.constantFrom(685, 687), utf16String({ maxLength: 60 }))
            .map(([type, line]) => Buffer.from(encodeEnvelope(type, line), 'utf8')),
          fc
            .tuple(fc.constantFrom(685, 687), fc.uint8Array({ maxLength: 40 }))
            .map(([type, bytes]) =>
              Buffer.concat([Buffer.from(`{"type": ${type}, "line": "`), bytes, Buffer.from('"}')]),
            ),
        ),
        (raw) => {
          const utf8 = new LineDecoder();
          const r = onlyTyped('decodeReceivedEnvelope', ['ERR_PROTOCOL'], () =>
            decodeReceivedEnvelope(raw, utf8),
          );
          const text = new TextDecoder('utf-8', { fatal: false }).decode(raw);
          const expected = onlyTyped('decodeEnvelope', ['ERR_PROTOCOL'], () =>
            decodeEnvelope(text),
          );
          if (!r.ok) return r.error instanceof ProtocolError;
          if (!expected.ok) return false;
          if (r.value.type !== expected.value.type || r.value.line !== expected.value.line)
            return false;
          return (
            !r.value.canonical ||
            canonicalFrame(raw).equals(encodeLine(encodeEnvelope(r.value.type, r.value.line)))
          );
        },
      ),
  }),
  fuzzProperty({
    name: 'pyjson: pyJsonDumps is printable ASCII, equals Python json.dumps, and JSON.parse reverses it',
    runs: 80_000,
    property: () =>
      fc.property(pyJsonValue, utf16String({ maxLength: 40 }), (v, s) => {
        const text = pyJsonDumps(v);
        if (!/^[\x20-\x7e]*$/.test(text)) return false;
        if (text !== pythonDumps(v)) return false;
        if (!isDeepStrictEqual(JSON.parse(text), v)) return false;
        const quoted = pyJsonString(s);
        return quoted === pythonString(s) && JSON.parse(quoted) === s;
      }),
  }),
];

// ---------------------------------------------------------------------------------------------
// Handshakes 793/795

const featuresArb = fc.dictionary(utf16String({ maxLength: 8 }), pyJsonValue, {
  maxKeys: 4,
  noNullPrototype: true,
});

const clientHandshake: fc.Arbitrary<ClientHandshake> = fc.record(
  {
    appName: fc.oneof(fc.constant('joinmarket'), utf16String({ maxLength: 12 })),
    directory: fc.boolean(),
    locationString: fc.oneof(fc.constant(NOT_SERVING_ONION), utf16String({ maxLength: 30 })),
    protoVer: fc.oneof(
      fc.constant(5),
      fc.maxSafeInteger().map((n) => (n === 0 ? 0 : n)),
    ),
    features: featuresArb,
    nick: utf16String({ maxLength: 20 }),
    network: fc.constantFrom('mainnet', 'testnet', 'signet', 'regtest', ''),
  },
  { noNullPrototype: true },
);

const directoryHandshake: fc.Arbitrary<DirectoryHandshake> = fc.record(
  {
    appName: fc.oneof(fc.constant('joinmarket'), utf16String({ maxLength: 12 })),
    directory: fc.boolean(),
    protoVerMin: fc.integer({ min: -10, max: 10 }).map((n) => (n === 0 ? 0 : n)),
    protoVerMax: fc.integer({ min: -10, max: 10 }).map((n) => (n === 0 ? 0 : n)),
    features: featuresArb,
    accepted: fc.boolean(),
    nick: utf16String({ maxLength: 20 }),
    network: fc.constantFrom('mainnet', 'testnet', 'signet'),
    motd: utf16String({ maxLength: 40 }),
  },
  { noNullPrototype: true },
);

const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  pyJsonValue,
  fc.double(),
  fc.constant(-0),
  fc.jsonValue({ maxDepth: 3 }),
);

/** Handshake-shaped JSON objects whose values have random types, with keys sometimes missing. */
function handshakeText(keys: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    fc
      .tuple(
        fc.array(fc.tuple(fc.constantFrom(...keys), anyJson), { maxLength: keys.length + 2 }),
        fc.array(fc.boolean(), { minLength: keys.length, maxLength: keys.length }),
      )
      .map(([pairs, drop]) => {
        const obj: Record<string, unknown> = {};
        keys.forEach((k, i) => {
          if (drop[i] !== true) obj[k] = 'x';
        });
        for (const [k, v] of pairs) obj[k] = v;
        return JSON.stringify(obj);
      }),
    anyJsonishText,
  );
}

const CLIENT_KEYS = [
  'app-name',
  'directory',
  'location-string',
  'proto-ver',
  'features',
  'nick',
  'network',
];
const DIRECTORY_KEYS = [
  'app-name',
  'directory',
  'proto-ver-min',
  'proto-ver-max',
  'features',
  'accepted',
  'nick',
  'network',
  'motd',
];

/** Python truthiness used by the parsers, for a generated boolean it is the boolean itself. */
const handshakeProperties: FuzzProperty[] = [
  fuzzProperty({
    name: 'handshake: parse(encode(793)) and parse(encode(795)) are identity',
    runs: 15_000,
    property: () =>
      fc.property(clientHandshake, directoryHandshake, (c, d) => {
        return (
          isDeepStrictEqual(parseClientHandshake(encodeClientHandshake(c)), c) &&
          isDeepStrictEqual(parseDirectoryHandshake(encodeDirectoryHandshake(d)), d)
        );
      }),
  }),
  fuzzProperty({
    name: 'handshake: parsing and evaluating any 793/795 line never throws; parsed values re-encode to themselves',
    runs: 100_000,
    property: () =>
      fc.property(
        handshakeText(CLIENT_KEYS),
        handshakeText(DIRECTORY_KEYS),
        fc.constantFrom('mainnet', 'testnet'),
        (client, directory, network) => {
          const c = parseClientHandshake(client);
          if (c !== undefined) {
            evaluateClientHandshake(c, { network });
            if (!containsNonInteger(c.features)) {
              if (!isDeepStrictEqual(parseClientHandshake(encodeClientHandshake(c)), c)) {
                return false;
              }
            }
          }
          const d = parseDirectoryHandshake(directory);
          if (d !== undefined) {
            evaluateDirectoryHandshake(d, { network });
            if (!containsNonInteger(d.features)) {
              if (!isDeepStrictEqual(parseDirectoryHandshake(encodeDirectoryHandshake(d)), d)) {
                return false;
              }
            }
          }
          return true;
        },
      ),
  }),
];

/** True when a JSON value holds a number pyJsonDumps refuses (a float or -0 is not an int). */
function containsNonInteger(v: unknown): boolean {
  if (typeof v === 'number') return !Number.isInteger(v) || Object.is(v, -0);
  if (typeof v !== 'object' || v === null) return false;
  return Object.values(v).some(containsNonInteger);
}

// ---------------------------------------------------------------------------------------------
// Peerlists and locations

const peerlistChar = fc.constantFrom('a', 'J', '5', ':', '.', ',', ';', '+', 'D', 'F', ' ', 'é');
const peerlistField = fc.oneof(
  fc.constantFrom('J5abc', 'host:5222', 'D', 'F:', 'F:a+b', 'F:+', 'F:b+a+b', ''),
  fc.string({ unit: peerlistChar, maxLength: 6 }),
);
const peerlistText = fc.oneof(
  fc
    .array(fc.array(peerlistField, { maxLength: 5 }), { maxLength: 4 })
    .map((entries) => entries.map((fields) => fields.join(';')).join(',')),
  fc.string({ unit: peerlistChar, maxLength: 60 }),
  utf16String({ maxLength: 40 }),
);

/** Normal form of an entry after encoding: features sorted, duplicates once, none when empty. */
function normalEntry(e: PeerlistEntry): PeerlistEntry {
  const out: PeerlistEntry = { nick: e.nick, location: e.location, disconnected: e.disconnected };
  if (e.features !== undefined && e.features.length > 0) {
    out.features = [...new Set(e.features)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }
  return out;
}

const fieldText = (forbidden: RegExp) =>
  utf16String({ minLength: 1, maxLength: 12 }).filter((s) => !forbidden.test(s));

const peerlistEntry: fc.Arbitrary<PeerlistEntry> = fc
  .record({
    nick: fieldText(/[,;]/),
    location: fieldText(/[,;]/),
    disconnected: fc.boolean(),
    features: fc.option(fc.array(fieldText(/[,;+]/), { maxLength: 3 }), { nil: undefined }),
  })
  .map((e) => {
    const out: PeerlistEntry = { nick: e.nick, location: e.location, disconnected: e.disconnected };
    if (e.features !== undefined) out.features = e.features;
    return out;
  });

/** One character of `alphabet`. */
function charOf(alphabet: string): fc.Arbitrary<string> {
  return fc.nat(alphabet.length - 1).map((i) => alphabet.charAt(i));
}

/** A realistic entry: a J5 nick, an onion location, sometimes D and features. */
const realisticEntry: fc.Arbitrary<PeerlistEntry> = fc
  .record({
    nick: fc.string({
      unit: charOf('123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'),
      minLength: 14,
      maxLength: 14,
    }),
    onion: fc.string({
      unit: charOf('abcdefghijklmnopqrstuvwxyz234567'),
      minLength: 56,
      maxLength: 56,
    }),
    disconnected: fc.boolean(),
    features: fc.option(fc.constantFrom(['peerlist_features'], ['peerlist_features', 'x']), {
      nil: undefined,
    }),
  })
  .map(({ nick, onion, disconnected, features }) => {
    const out: PeerlistEntry = { nick: `J5${nick}`, location: `${onion}.onion:5222`, disconnected };
    if (features !== undefined) out.features = features;
    return out;
  });

/**
 * Thousands of entries, up to `maxChars` characters once encoded: a few templates repeated, each
 * copy's nick made unique by its index (digits hold no separator).
 */
const manyEntries = fc
  .tuple(
    fc.array(fc.oneof(realisticEntry, peerlistEntry), { minLength: 1, maxLength: 6 }),
    fc.integer({ min: 1_000, max: 65_000 }),
  )
  .map(([templates, maxChars]) => {
    const entries: PeerlistEntry[] = [];
    let chars = 0;
    for (let i = 0; ; i++) {
      const t = templates[i % templates.length]!;
      const e: PeerlistEntry = { ...t, nick: `${t.nick}${i}` };
      const size = encodePeerlistEntry(e).length + 1;
      if (chars + size > maxChars) break;
      chars += size;
      entries.push(e);
    }
    return entries;
  });

/** Up to 30 characters replaced, inserted or removed anywhere in a long line. */
const lineMutations = fc.array(
  fc.tuple(
    fc.nat(),
    fc.nat(2),
    fc.constantFrom(',', ';', ':', '+', 'D', 'F', 'F:', ',,', ';D', ' ', '\ud800', ''),
  ),
  { minLength: 1, maxLength: 30 },
);

function mutateLine(
  line: string,
  mutations: readonly (readonly [number, number, string])[],
): string {
  let out = line;
  for (const [at, mode, ch] of mutations) {
    const i = at % (out.length + 1);
    if (mode === 0) out = out.slice(0, i) + ch + out.slice(i + 1);
    else if (mode === 1) out = out.slice(0, i) + ch + out.slice(i);
    else out = out.slice(0, i) + out.slice(i + 1);
  }
  return out;
}

/** decodePeerlist of `line` never throws and each entry re-encodes and decodes to its normal form. */
function decodesSoundly(line: string): boolean {
  const entries = decodePeerlist(line);
  if (entries.length > line.split(',').length) return false;
  for (const e of entries) {
    if (!isDeepStrictEqual(decodePeerlist(encodePeerlistEntry(e)), [normalEntry(e)])) return false;
  }
  return true;
}

const locationText = fc.oneof(
  fc.constant(NOT_SERVING_ONION),
  fc
    .tuple(
      fc.oneof(utf16String({ maxLength: 20 }), fc.constantFrom('127.0.0.1', 'a.onion', '')),
      fc.oneof(
        fc.nat(70_000).map(String),
        utf16String({ maxLength: 6 }),
        fc.constantFrom('05222', '0', '+1', '1e3', ' 80'),
      ),
    )
    .map(([h, p]) => `${h}:${p}`),
  utf16String({ maxLength: 30 }),
  fc.string({ unit: fc.constantFrom('a', ':', '1', ',', ' '), maxLength: 310 }),
);

const peerlistProperties: FuzzProperty[] = [
  fuzzProperty({
    name: 'peerlist: decode of any line never throws and every entry re-encodes and decodes to its normal form',
    runs: 200_000,
    property: () =>
      fc.property(peerlistText, (line) => {
        const entries = decodePeerlist(line);
        for (const e of entries) {
          const again = decodePeerlist(encodePeerlistEntry(e));
          if (!isDeepStrictEqual(again, [normalEntry(e)])) return false;
        }
        return true;
      }),
  }),
  fuzzProperty({
    name: 'peerlist: decode(encode(entries)) gives the entries in normal form',
    runs: 50_000,
    property: () =>
      fc.property(fc.array(peerlistEntry, { maxLength: 5 }), (entries) =>
        isDeepStrictEqual(decodePeerlist(encodePeerlist(entries)), entries.map(normalEntry)),
      ),
  }),
  fuzzProperty({
    name: 'peerlist: lines of thousands of entries up to 65 KB decode to their normal form; mutated, they decode soundly',
    runs: 1_500,
    property: () =>
      fc.property(manyEntries, lineMutations, (entries, mutations) => {
        const line = encodePeerlist(entries);
        if (!isDeepStrictEqual(decodePeerlist(line), entries.map(normalEntry))) return false;
        return decodesSoundly(mutateLine(line, mutations));
      }),
  }),
  fuzzProperty({
    name: 'location: parseLocation throws only ProtocolError; parse(format(parse(x))) = parse(x), canonical text unchanged',
    runs: 150_000,
    property: () =>
      fc.property(locationText, (text) => {
        const r = onlyTyped('parseLocation', ['ERR_PROTOCOL'], () => parseLocation(text));
        if (!r.ok) return true;
        const formatted = formatLocation(r.value);
        if (!isDeepStrictEqual(parseLocation(formatted), r.value)) return false;
        const port = text.split(':')[1] ?? '';
        return port.startsWith('0') || formatted === text;
      }),
  }),
  fuzzProperty({
    name: 'location: onion address of any key is a v3 hostname; uppercase or any other text is not',
    runs: 20_000,
    property: () =>
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), locationText, (key, text) => {
        const host = onionAddressFromPublicKey(key);
        if (!isV3OnionHostname(host) || isV3OnionHostname(host.toUpperCase())) return false;
        isV3OnionHostname(text);
        return !isV3OnionHostname(`${host}.`) && !isV3OnionHostname(host.slice(1));
      }),
  }),
];

/** Every property of src/wire. */
export const wireProperties: readonly FuzzProperty[] = [
  ...framingProperties,
  ...receivePathProperties,
  ...jsonProperties,
  ...handshakeProperties,
  ...peerlistProperties,
];
