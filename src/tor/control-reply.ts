/**
 * Tor control-port reply codec (pure: bytes in, typed replies out; no sockets, no timers).
 *
 * Owns: framing of the reply stream into {@link ControlReply} objects, dot-decoding of data
 * blocks, and the control protocol's string syntax ({@link parseKeyValues}, {@link quoteString}).
 *
 * Wire format (Tor control-spec §2.3 "Replies from Tor to the controller", §2.4 CmdData):
 *
 * | line shape                 | meaning                                                    |
 * | -------------------------- | ---------------------------------------------------------- |
 * | `DDD-text CRLF`            | MidReplyLine: the reply goes on                            |
 * | `DDD+text CRLF` data `.`   | DataReplyLine: dot-stuffed lines up to a line of one `.`   |
 * | `DDD text CRLF`            | EndReplyLine: the last line of the reply                   |
 *
 * `DDD` is a 3-digit status; `6xx` marks an asynchronous reply (an event, control-spec §4.1).
 * Tor must send CRLF; this parser also accepts a bare LF (control-spec §2.1 allows controllers to
 * be lenient). Lines in a data block whose first character is `.` had an extra `.` prepended by
 * tor (RFC 2821 §4.5.2 dot-stuffing), which is removed here.
 */
import { TorControlError } from '../errors.js';

/** Longest reply line accepted, in bytes, excluding the line ending. Control-spec sets no limit; this is ours. */
export const MAX_REPLY_LINE_BYTES = 1024 * 1024;

/**
 * Most bytes of data-block content one reply line may carry (a `GETINFO ns/all` on the public
 * network is a few MiB). Control-spec sets no limit; this is ours.
 */
export const MAX_REPLY_DATA_BYTES = 64 * 1024 * 1024;

/** Most lines one reply may carry before the parser gives up on it. Our limit. */
export const MAX_REPLY_LINES = 100_000;

const LF = 0x0a;
const CR = 0x0d;

/** One line of a reply (control-spec §2.3). */
export interface ControlReplyLine {
  /** The line's 3-digit status code, e.g. 250. */
  status: number;
  /** Text after the status and separator, e.g. `ServiceID=abc...` (no line ending). */
  text: string;
  /**
   * For a DataReplyLine (`DDD+`): the data block with dot-stuffing undone and its lines joined
   * by `\n` (no trailing newline; an empty block gives `''`). Absent on other lines.
   */
  data?: string;
}

/** One complete reply (control-spec §2.3): zero or more mid/data lines and one end line. */
export interface ControlReply {
  /** Status of the end line (control-spec guarantees every line of a reply shares it). */
  status: number;
  /** Every line of the reply in order; the last one is the end line. */
  lines: ControlReplyLine[];
  /** True for `6xx` replies: asynchronous events, not answers to a command (control-spec §4.1). */
  isAsync: boolean;
}

/** A reply still being assembled. */
interface PartialReply {
  lines: ControlReplyLine[];
  dataBytes: number;
}

/** The data block being read and the line it belongs to. */
interface DataBlock {
  line: ControlReplyLine;
  slot: PartialReply;
  parts: string[];
}

/**
 * Incremental parser of Tor control-port replies: feed it bytes as they arrive, however they are
 * split, and get every reply completed by those bytes.
 *
 * Asynchronous (`6xx`) lines are assembled apart from synchronous ones, so an event arriving in
 * the middle of a multi-line answer neither corrupts the answer nor gets lost.
 *
 * After it has thrown once the parser is unusable: every later {@link push} throws the same error
 * (the stream is out of sync and its connection must be closed).
 */
export class ControlReplyParser {
  readonly #decoder = new TextDecoder('utf-8');
  /** Bytes of the current, unterminated line. */
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #sync: PartialReply | undefined;
  #async: PartialReply | undefined;
  #data: DataBlock | undefined;
  #failure: TorControlError | undefined;

  /**
   * Consumes `chunk` and returns the replies it completed, in the order their end lines arrived.
   * @throws TorControlError `ERR_TOR_CONTROL` for a malformed status, a line longer than
   *   {@link MAX_REPLY_LINE_BYTES}, or a reply beyond {@link MAX_REPLY_DATA_BYTES} /
   *   {@link MAX_REPLY_LINES}.
   */
  push(chunk: Uint8Array): ControlReply[] {
    if (this.#failure !== undefined) throw this.#failure;
    try {
      return this.#push(chunk);
    } catch (err) {
      this.#failure =
        err instanceof TorControlError
          ? err
          : new TorControlError('ERR_TOR_CONTROL', 'bad control reply', { cause: err });
      this.#pending = [];
      throw this.#failure;
    }
  }

  /** True when bytes of an unfinished line or reply are buffered. */
  get hasPartial(): boolean {
    return (
      this.#pendingBytes > 0 ||
      this.#sync !== undefined ||
      this.#async !== undefined ||
      this.#data !== undefined
    );
  }

  #push(chunk: Uint8Array): ControlReply[] {
    const out: ControlReply[] = [];
    let start = 0;
    while (start < chunk.length) {
      const lf = chunk.indexOf(LF, start);
      if (lf === -1) {
        this.#appendPending(chunk.subarray(start));
        break;
      }
      this.#appendPending(chunk.subarray(start, lf));
      start = lf + 1;
      const line = this.#takeLine();
      const reply = this.#handleLine(line);
      if (reply !== undefined) out.push(reply);
    }
    return out;
  }

  #appendPending(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#pendingBytes += bytes.length;
    // +1: a CR that ends the line is not part of its length.
    if (this.#pendingBytes > MAX_REPLY_LINE_BYTES + 1) {
      throw new TorControlError(
        'ERR_TOR_CONTROL',
        `control reply line longer than ${MAX_REPLY_LINE_BYTES} bytes`,
      );
    }
    // Copy: the caller may reuse its buffer.
    this.#pending.push(bytes.slice());
  }

  /** Returns the buffered line without its line ending and clears the buffer. */
  #takeLine(): string {
    let bytes: Uint8Array;
    if (this.#pending.length === 1) {
      bytes = this.#pending[0]!;
    } else {
      bytes = new Uint8Array(this.#pendingBytes);
      let at = 0;
      for (const part of this.#pending) {
        bytes.set(part, at);
        at += part.length;
      }
    }
    this.#pending = [];
    this.#pendingBytes = 0;
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === CR) end -= 1;
    if (end > MAX_REPLY_LINE_BYTES) {
      throw new TorControlError(
        'ERR_TOR_CONTROL',
        `control reply line longer than ${MAX_REPLY_LINE_BYTES} bytes`,
      );
    }
    return this.#decoder.decode(bytes.subarray(0, end));
  }

  #handleLine(text: string): ControlReply | undefined {
    const data = this.#data;
    if (data !== undefined) {
      if (text === '.') {
        data.line.data = data.parts.join('\n');
        this.#data = undefined;
        return undefined;
      }
      const content = text.startsWith('.') ? text.slice(1) : text;
      data.slot.dataBytes += content.length + 1;
      if (data.slot.dataBytes > MAX_REPLY_DATA_BYTES) {
        throw new TorControlError(
          'ERR_TOR_CONTROL',
          `control reply data longer than ${MAX_REPLY_DATA_BYTES} bytes`,
        );
      }
      data.parts.push(content);
      return undefined;
    }

    const match = /^([0-9]{3})([ +-])/.exec(text);
    if (match === null) {
      throw new TorControlError(
        'ERR_TOR_CONTROL',
        `malformed control reply line (expected a 3-digit status and one of ' ', '-', '+'): ${JSON.stringify(text.slice(0, 40))}`,
      );
    }
    const status = Number(match[1]);
    const kind = match[2];
    const line: ControlReplyLine = { status, text: text.slice(4) };
    const isAsync = status >= 600 && status <= 699;
    let slot = isAsync ? this.#async : this.#sync;
    if (slot === undefined) {
      slot = { lines: [], dataBytes: 0 };
      if (isAsync) this.#async = slot;
      else this.#sync = slot;
    }
    if (slot.lines.length >= MAX_REPLY_LINES) {
      throw new TorControlError(
        'ERR_TOR_CONTROL',
        `control reply with more than ${MAX_REPLY_LINES} lines`,
      );
    }
    slot.lines.push(line);

    if (kind === '+') {
      this.#data = { line, slot, parts: [] };
      return undefined;
    }
    if (kind === '-') return undefined;

    if (isAsync) this.#async = undefined;
    else this.#sync = undefined;
    return { status, lines: slot.lines, isAsync };
  }
}

/**
 * Parses the `KEY=VALUE` pairs of a reply line, e.g.
 * `AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/run/tor/control.authcookie"`.
 *
 * Words without `=` (here `AUTH`) are skipped. A value is either a run of non-space characters
 * or a quoted string. Quoted strings are unescaped per control-spec §2.1.1: `\n`, `\t`, `\r` and
 * octal `\0`..`\377` are C escapes (tor emits CStrings in several places), and a backslash
 * before any other character stands for that character (QuotedString). Escaped octets are
 * reassembled as UTF-8.
 *
 * @returns the pairs by key; a repeated key keeps its last value.
 * @throws TorControlError `ERR_TOR_CONTROL` for an unterminated quoted string.
 */
export function parseKeyValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && text[i] === ' ') i += 1;
    if (i >= n) break;
    const wordStart = i;
    while (i < n && text[i] !== ' ' && text[i] !== '=') i += 1;
    if (i >= n || text[i] === ' ') continue; // a bare word
    const key = text.slice(wordStart, i);
    i += 1; // '='
    if (text[i] === '"') {
      const { value, end } = readQuoted(text, i);
      out.set(key, value);
      i = end;
    } else {
      const valueStart = i;
      while (i < n && text[i] !== ' ') i += 1;
      out.set(key, text.slice(valueStart, i));
    }
  }
  return out;
}

/**
 * Reads the quoted string starting at `text[start] === '"'`.
 * @returns the unescaped value and the index just past the closing quote.
 */
function readQuoted(text: string, start: number): { value: string; end: number } {
  const encoder = new TextEncoder();
  const bytes: number[] = [];
  let i = start + 1;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '"') {
      return { value: new TextDecoder('utf-8').decode(Uint8Array.from(bytes)), end: i + 1 };
    }
    if (ch === '\\') {
      const next = text[i + 1];
      if (next === undefined) break;
      if (next === 'n') bytes.push(0x0a);
      else if (next === 't') bytes.push(0x09);
      else if (next === 'r') bytes.push(0x0d);
      else if (next >= '0' && next <= '7') {
        const octal = /^[0-7]{1,3}/.exec(text.slice(i + 1, i + 4))![0];
        const value = parseInt(octal, 8);
        if (value <= 0xff) {
          bytes.push(value);
          i += 1 + octal.length;
          continue;
        }
        // \4xx..\7xx is not an octet: take the first two digits only.
        bytes.push(parseInt(octal.slice(0, 2), 8));
        i += 3;
        continue;
      } else bytes.push(...encoder.encode(next));
      i += 2;
      continue;
    }
    const cp = text.codePointAt(i)!;
    const char = String.fromCodePoint(cp);
    bytes.push(...encoder.encode(char));
    i += char.length;
  }
  throw new TorControlError('ERR_TOR_CONTROL', 'unterminated quoted string in a control reply');
}

/**
 * Quotes `s` as a control-spec QuotedString argument (§2.1): wraps it in double quotes and puts a
 * backslash before every `"` and `\`.
 * @throws TorControlError `ERR_TOR_COMMAND` when `s` contains CR, LF or NUL: they would end or
 *   corrupt the command line (command injection).
 */
export function quoteString(s: string): string {
  if (/[\r\n\0]/.test(s)) {
    throw new TorControlError(
      'ERR_TOR_COMMAND',
      'a control-port argument must not contain CR, LF or NUL',
    );
  }
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
