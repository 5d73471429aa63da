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
 * Strict UTF-8, shared by every decoder: without `stream` a TextDecoder keeps no state between
 * calls, and one per connection cost about 0.5 KiB each.
 */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

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
 *   that lie entirely inside one chunk are returned from it without copying.
 * - Two ways to use it: {@link LineDecoder.push} decodes every line a chunk completes at once;
 *   {@link LineDecoder.append} with {@link LineDecoder.nextLine} takes lines one at a time as raw
 *   bytes, so a reader can drop a line (a rate limit) without decoding it and can leave lines
 *   waiting in the chunks they arrived in (fair reading, src/peer/fair-reader.ts).
 *
 * After a throw the decoder is unusable: every later call throws the same error. Lines completed
 * earlier in the chunk that caused the error are not returned by {@link LineDecoder.push}; the
 * caller is expected to close the connection (docs/protocol.md §1.2, §1.3).
 */
export class LineDecoder {
  readonly #maxLineBytes: number;
  /** Received chunks not yet consumed; `#chunks[0]` is consumed up to `#pos`. */
  #chunks: Uint8Array[] = [];
  #pos = 0;
  /** The start of a line that spans chunks, copied here; `#carry[0..#carryLen)` has no LF. */
  #carry: Buffer = Buffer.alloc(0);
  #carryLen = 0;
  /** Bytes appended and not yet returned, delimiters included. */
  #buffered = 0;
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

  /**
   * Bytes received but not yet returned as part of a line: after {@link push}, the unterminated
   * tail; with {@link append}, everything not yet taken by {@link nextLine}.
   */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /**
   * Feeds received bytes and returns the lines they complete, in order, without their delimiters.
   * The decoder copies what it keeps, so the caller may reuse `chunk` afterwards.
   *
   * @throws ProtocolError `ERR_LINE_TOO_LONG` when a line or the unterminated buffer is over the
   *   limit; `ERR_PROTOCOL` when a line is not valid UTF-8.
   */
  push(chunk: Uint8Array): string[] {
    this.append(chunk);
    const lines: string[] = [];
    for (let line = this.nextLine(); line !== undefined; line = this.nextLine()) {
      lines.push(this.decode(line));
    }
    return lines;
  }

  /**
   * Queues received bytes for {@link nextLine}. The decoder keeps a reference to `chunk` until its
   * lines are taken (a socket's chunks are never reused), copying only a line that spans chunks.
   * @throws ProtocolError the decoder's earlier failure, if any.
   */
  append(chunk: Uint8Array): void {
    if (this.#failure !== undefined) throw this.#failure;
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /**
   * Takes the next complete line as raw bytes, without its delimiter, or returns undefined when
   * no complete line is queued. The bytes are valid until the next call (they may be a view of
   * an internal buffer); decode them with {@link decode}, or skip them.
   *
   * @throws ProtocolError `ERR_LINE_TOO_LONG` when the line, or the unterminated rest, is over the
   *   limit.
   */
  nextLine(): Uint8Array | undefined {
    if (this.#failure !== undefined) throw this.#failure;
    try {
      return this.#nextLine();
    } catch (err) {
      if (err instanceof ProtocolError) {
        this.#failure = err;
        // Nothing more will be read: keep no more than the carried bytes.
        this.#chunks = [];
        this.#pos = 0;
        this.#buffered = this.#carryLen;
      }
      throw err;
    }
  }

  /**
   * Decodes a line's bytes as strict UTF-8 (no BOM stripping, no replacement characters).
   * @throws ProtocolError `ERR_PROTOCOL` when they are not valid UTF-8 (the decoder becomes
   *   unusable).
   */
  decode(bytes: Uint8Array): string {
    try {
      return UTF8.decode(bytes);
    } catch {
      this.#failure = new ProtocolError('line is not valid UTF-8');
      throw this.#failure;
    }
  }

  #nextLine(): Uint8Array | undefined {
    for (;;) {
      const first = this.#chunks[0];
      if (first === undefined) return undefined;
      const lf = first.indexOf(LF, this.#pos);
      if (lf === -1) {
        // The rest of this chunk starts (or continues) a line that ends in a later chunk.
        this.#appendCarry(first.subarray(this.#pos), true);
        this.#chunks.shift();
        this.#pos = 0;
        continue;
      }
      let line: Uint8Array;
      if (this.#carryLen > 0) {
        this.#appendCarry(first.subarray(this.#pos, lf), false);
        line = this.#carry.subarray(0, this.#carryLen);
        this.#carryLen = 0;
      } else {
        line = first.subarray(this.#pos, lf);
      }
      this.#buffered -= line.length + 1;
      this.#pos = lf + 1;
      if (this.#pos === first.length) {
        this.#chunks.shift();
        this.#pos = 0;
      }
      // One CR right before the LF is part of the delimiter.
      if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
      if (line.length > this.#maxLineBytes) {
        throw new ProtocolError(
          `line of ${line.length} bytes exceeds the limit of ${this.#maxLineBytes} bytes`,
          'ERR_LINE_TOO_LONG',
        );
      }
      return line;
    }
  }

  /**
   * Copies `bytes` to the end of the carried line start. With `unterminated` (no LF follows yet)
   * it first enforces the unterminated-buffer limit (the line plus its CR), so the carry never
   * grows past it.
   */
  #appendCarry(bytes: Uint8Array, unterminated: boolean): void {
    const needed = this.#carryLen + bytes.length;
    if (unterminated && needed > this.#maxLineBytes + 1) {
      throw new ProtocolError(
        `unterminated line of at least ${needed} bytes exceeds the limit of ${this.#maxLineBytes} bytes`,
        'ERR_LINE_TOO_LONG',
      );
    }
    if (needed > this.#carry.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, this.#carry.length * 2, 256));
      this.#carry.copy(grown, 0, 0, this.#carryLen);
      this.#carry = grown;
    }
    this.#carry.set(bytes, this.#carryLen);
    this.#carryLen = needed;
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
  const maxBytes = MAX_SEND_LINE_BYTES;
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
