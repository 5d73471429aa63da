/**
 * Line framing of the onion message channel (docs/protocol.md §1.1, §1.3): every message is the UTF-8 bytes of
 * one JSON object followed by CR LF. This module turns a byte stream into lines and lines into
 * bytes; it knows nothing of sockets or JSON.
 *
 * | direction | delimiter                          | limit (excluding the delimiter)        |
 * |-----------|------------------------------------|----------------------------------------|
 * | send      | always CR LF                       | {@link MAX_SEND_LINE_BYTES} = 40,000    |
 * | receive   | CR LF, or a bare LF (as ng does)   | {@link MAX_RECEIVE_LINE_BYTES} = 65,536 |
 */
import { Buffer } from 'node:buffer';
import { ProtocolError } from '../errors.js';

/**
 * Longest line we send, in bytes, excluding CR LF. The reference's Twisted LineReceiver has
 * `MAX_LENGTH = 40000` and drops the connection on longer lines (docs/protocol.md §1.3, §10;
 * R: src/jmdaemon/onionmc.py).
 */
export const MAX_SEND_LINE_BYTES = 40_000;

/**
 * Longest line we accept, in bytes, excluding the delimiter: ng directories accept up to 64 KiB
 * (`max_line_length`), and §10 asks every implementation to accept at least that much (docs/protocol.md §1.3).
 */
export const MAX_RECEIVE_LINE_BYTES = 65_536;

const LF = 0x0a;
const CR = 0x0d;

/**
 * Splits a received byte stream into lines (docs/protocol.md §1.1).
 *
 * - The delimiter is CR LF. A bare LF is accepted too, as ng accepts it
 *   (NG: jmcore/src/jmcore/network.py); one CR right before the LF is removed either way.
 * - Each line is decoded as strict UTF-8 (no BOM stripping, no replacement characters).
 * - Limits: a complete line longer than `maxLineBytes` (excluding its delimiter) throws; so does an
 *   unterminated buffer longer than `maxLineBytes + 1` bytes (room for the line plus its CR), at
 *   once, without waiting for the delimiter. Memory held is therefore bounded by about
 *   `maxLineBytes` whatever the peer sends.
 * - Cost is linear in the bytes pushed: bytes already scanned are never scanned again, and lines
 *   that lie entirely inside one chunk are decoded from it without copying.
 *
 * After a throw the decoder is unusable: every later {@link LineDecoder.push} throws the same error.
 * Lines completed earlier in the chunk that caused the error are not returned; the caller is
 * expected to close the connection (docs/protocol.md §1.2, §1.3).
 */
export class LineDecoder {
  readonly #maxLineBytes: number;
  readonly #utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  /** Holds the unterminated tail; `#buf[0..#len)` never contains an LF. */
  #buf: Buffer = Buffer.alloc(0);
  #len = 0;
  #failure: ProtocolError | undefined;

  /**
   * @param maxLineBytes longest accepted line in bytes, excluding the delimiter; default
   *   {@link MAX_RECEIVE_LINE_BYTES}.
   */
  constructor(maxLineBytes: number = MAX_RECEIVE_LINE_BYTES) {
    if (!Number.isSafeInteger(maxLineBytes) || maxLineBytes < 1) {
      throw new RangeError(`maxLineBytes must be a positive integer, got ${String(maxLineBytes)}`);
    }
    this.#maxLineBytes = maxLineBytes;
  }

  /** Bytes received but not yet returned as part of a line (the unterminated tail). */
  get bufferedBytes(): number {
    return this.#len;
  }

  /**
   * Feeds received bytes and returns the lines they complete, in order, without their delimiters.
   * The decoder copies what it keeps, so the caller may reuse `chunk` afterwards.
   *
   * @throws ProtocolError `ERR_LINE_TOO_LONG` when a line or the unterminated buffer is over the
   *   limit; `ERR_PROTOCOL` when a line is not valid UTF-8.
   */
  push(chunk: Uint8Array): string[] {
    if (this.#failure !== undefined) throw this.#failure;
    try {
      return this.#push(chunk);
    } catch (err) {
      if (err instanceof ProtocolError) this.#failure = err;
      throw err;
    }
  }

  #push(chunk: Uint8Array): string[] {
    const lines: string[] = [];
    let pos = 0;
    let lf = chunk.indexOf(LF);
    if (this.#len > 0) {
      if (lf === -1) {
        this.#append(chunk, 0);
        return lines;
      }
      // The buffered tail plus chunk[0..lf) form one line.
      const total = this.#len + lf;
      const lastByte = lf > 0 ? chunk[lf - 1] : this.#buf[this.#len - 1];
      const lineBytes = lastByte === CR ? total - 1 : total;
      this.#checkLineLength(lineBytes);
      this.#append(chunk.subarray(0, lf), 0, false);
      lines.push(this.#decode(this.#buf.subarray(0, lineBytes)));
      this.#len = 0;
      pos = lf + 1;
      lf = chunk.indexOf(LF, pos);
    }
    while (lf !== -1) {
      const end = lf > pos && chunk[lf - 1] === CR ? lf - 1 : lf;
      this.#checkLineLength(end - pos);
      lines.push(this.#decode(chunk.subarray(pos, end)));
      pos = lf + 1;
      lf = chunk.indexOf(LF, pos);
    }
    if (pos < chunk.length) this.#append(chunk, pos);
    return lines;
  }

  #checkLineLength(lineBytes: number): void {
    if (lineBytes > this.#maxLineBytes) {
      throw new ProtocolError(
        `line of ${lineBytes} bytes exceeds the limit of ${this.#maxLineBytes} bytes`,
        'ERR_LINE_TOO_LONG',
      );
    }
  }

  /**
   * Copies `chunk[from..)` to the tail buffer. With `checkLimit` (the tail stays unterminated) it
   * first enforces the unterminated-buffer limit, so the buffer never grows past it.
   */
  #append(chunk: Uint8Array, from: number, checkLimit = true): void {
    const add = chunk.length - from;
    const needed = this.#len + add;
    if (checkLimit && needed > this.#maxLineBytes + 1) {
      throw new ProtocolError(
        `unterminated line of at least ${needed} bytes exceeds the limit of ${this.#maxLineBytes} bytes`,
        'ERR_LINE_TOO_LONG',
      );
    }
    if (needed > this.#buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, this.#buf.length * 2, 256));
      this.#buf.copy(grown, 0, 0, this.#len);
      this.#buf = grown;
    }
    this.#buf.set(from === 0 ? chunk : chunk.subarray(from), this.#len);
    this.#len = needed;
  }

  #decode(bytes: Uint8Array): string {
    try {
      return this.#utf8.decode(bytes);
    } catch {
      throw new ProtocolError('line is not valid UTF-8');
    }
  }
}

/**
 * Frames one line for sending: its UTF-8 bytes followed by CR LF (docs/protocol.md §1.1).
 *
 * @param text the line, normally an envelope from `encodeEnvelope` (pure ASCII).
 * @returns a new Buffer of `byteLength(text) + 2` bytes.
 * @throws ProtocolError `ERR_LINE_TOO_LONG` when `text` is longer than {@link MAX_SEND_LINE_BYTES}
 *   UTF-8 bytes (docs/protocol.md §1.3, §10); `ERR_PROTOCOL` when it contains a raw CR or LF, which would split
 *   it into several lines at the receiver.
 */
export function encodeLine(text: string): Buffer {
  return encodeLineWithin(text, MAX_SEND_LINE_BYTES);
}

/**
 * {@link encodeLine} with another limit: a directory node relays received lines of up to
 * {@link MAX_RECEIVE_LINE_BYTES} (docs/protocol.md §13.1).
 * @throws ProtocolError `ERR_LINE_TOO_LONG` when `text` is longer than `maxBytes` UTF-8 bytes;
 *   `ERR_PROTOCOL` when it contains a raw CR or LF.
 */
export function encodeLineWithin(text: string, maxBytes: number): Buffer {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) {
    throw new ProtocolError(
      `line of ${bytes} bytes exceeds the send limit of ${maxBytes} bytes`,
      'ERR_LINE_TOO_LONG',
    );
  }
  if (text.includes('\n') || text.includes('\r')) {
    throw new ProtocolError('line to send contains a raw CR or LF');
  }
  const out = Buffer.allocUnsafe(bytes + 2);
  out.write(text, 0, 'utf8');
  out[bytes] = CR;
  out[bytes + 1] = LF;
  return out;
}
