/**
 * Twisted AMP boxes (twisted/protocols/amp.py `AmpBox.serialize`, `BinaryBoxProtocol`): the frame
 * of JoinMarket's client-daemon link (docs/joinmarketd.md). Pure: bytes in, boxes out.
 *
 * | field        | size          | notes                                              |
 * |--------------|---------------|----------------------------------------------------|
 * | key length   | u16 BE        | 1-255; 0 ends the box                              |
 * | key          | key length    | bytes (ASCII in practice)                          |
 * | value length | u16 BE        | 0-65,535                                           |
 * | value        | value length  | bytes                                              |
 * | ...          |               | more pairs                                         |
 * | terminator   | u16 BE `0000` | end of box                                         |
 *
 * Twisted writes the pairs sorted by key bytes; {@link encodeBox} does the same, so our boxes are
 * byte-identical to the reference's. Keys are held as latin1 strings (one character per byte), so
 * any key bytes survive a round trip and string order is byte order.
 */
import { AmpError } from './errors.js';

/** Longest key, in bytes (Twisted `MAX_KEY_LENGTH`). */
export const AMP_MAX_KEY_BYTES = 0xff;
/** Longest value, in bytes (Twisted `MAX_VALUE_LENGTH`). */
export const AMP_MAX_VALUE_BYTES = 0xffff;
/** Default cap on one decoded box, in bytes (a JMOffers with a big orderbook fits many times). */
export const AMP_DEFAULT_MAX_BOX_BYTES = 16 * 1024 * 1024;
/** Default cap on the number of pairs in one decoded box. */
export const AMP_DEFAULT_MAX_BOX_KEYS = 4096;

/** One AMP box: key (latin1, one character per byte) to value bytes. */
export type AmpBox = Map<string, Buffer>;

/**
 * Serialises a box as Twisted does: pairs sorted by key bytes, then the `0000` terminator.
 * @throws AmpError `ERR_AMP_TOO_LONG` for an empty key, a key over 255 bytes or a value over
 *   65,535 bytes (use BigUnicode for longer text).
 */
export function encodeBox(box: ReadonlyMap<string, Uint8Array>): Buffer {
  const keys = [...box.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const parts: Buffer[] = [];
  for (const key of keys) {
    const keyBytes = Buffer.from(key, 'latin1');
    const value = box.get(key) ?? Buffer.alloc(0);
    if (keyBytes.length === 0 || keyBytes.length > AMP_MAX_KEY_BYTES)
      throw new AmpError('ERR_AMP_TOO_LONG', `AMP key of ${keyBytes.length} bytes (1-255 allowed)`);
    if (value.length > AMP_MAX_VALUE_BYTES)
      throw new AmpError(
        'ERR_AMP_TOO_LONG',
        `AMP value of ${value.length} bytes under key "${key}" (at most 65,535)`,
      );
    const header = Buffer.alloc(2);
    header.writeUInt16BE(keyBytes.length);
    const valueHeader = Buffer.alloc(2);
    valueHeader.writeUInt16BE(value.length);
    parts.push(header, keyBytes, valueHeader, Buffer.from(value));
  }
  parts.push(Buffer.alloc(2));
  return Buffer.concat(parts);
}

/** Builds a box from string values (UTF-8) and byte values. */
export function boxFrom(fields: Readonly<Record<string, string | Uint8Array>>): AmpBox {
  const box: AmpBox = new Map();
  for (const [key, value] of Object.entries(fields)) {
    box.set(key, typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value));
  }
  return box;
}

/** Options of {@link AmpBoxDecoder}. */
export interface AmpBoxDecoderOptions {
  /** Cap on one box's encoded size, bytes; default {@link AMP_DEFAULT_MAX_BOX_BYTES}. */
  readonly maxBoxBytes?: number;
  /** Cap on pairs per box; default {@link AMP_DEFAULT_MAX_BOX_KEYS}. */
  readonly maxBoxKeys?: number;
}

/**
 * Incremental decoder over a byte stream: feed chunks split anywhere, get whole boxes back.
 * After it throws, the stream is unusable (the connection must be closed), as in Twisted.
 */
export class AmpBoxDecoder {
  readonly #maxBoxBytes: number;
  readonly #maxBoxKeys: number;
  #buffer: Buffer = Buffer.alloc(0);
  #box: AmpBox = new Map();
  #boxBytes = 0;
  #failed = false;

  constructor(options: AmpBoxDecoderOptions = {}) {
    this.#maxBoxBytes = options.maxBoxBytes ?? AMP_DEFAULT_MAX_BOX_BYTES;
    this.#maxBoxKeys = options.maxBoxKeys ?? AMP_DEFAULT_MAX_BOX_KEYS;
  }

  /** Bytes received that do not yet make a whole box. */
  get pendingBytes(): number {
    return this.#boxBytes + this.#buffer.length;
  }

  /**
   * Adds bytes and returns every box they complete, in order.
   * @throws AmpError `ERR_AMP_TOO_LONG` for a key length over 255; `ERR_AMP_BAD_BOX` for a box over
   *   the caps or a key given twice, or when the stream already failed. The boxes the same bytes
   *   completed before the fault are lost: {@link read} returns them.
   */
  push(chunk: Uint8Array): AmpBox[] {
    const { boxes, error } = this.read(chunk);
    if (error !== undefined) throw error;
    return boxes;
  }

  /**
   * Adds bytes and returns every box they complete, in order, and the fault that ended the stream
   * if there is one, after the boxes completed before it (Twisted's AMP too handles each box as it
   * completes, before it meets a fault further on). Once a fault is returned, every later call
   * returns one again with no box. A fault is returned, never thrown; what is thrown is a bug.
   */
  read(chunk: Uint8Array): { boxes: AmpBox[]; error: AmpError | undefined } {
    if (this.#failed)
      return { boxes: [], error: new AmpError('ERR_AMP_BAD_BOX', 'AMP stream already failed') };
    this.#buffer =
      this.#buffer.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.#buffer, chunk]);
    const boxes: AmpBox[] = [];
    try {
      for (;;) {
        const box = this.#next();
        if (box === undefined) break;
        boxes.push(box);
      }
    } catch (err) {
      this.#failed = true;
      if (err instanceof AmpError) return { boxes, error: err };
      throw err;
    }
    return { boxes, error: undefined };
  }

  /**
   * Throws if the stream ended inside a box (the peer closed mid-box).
   * @throws AmpError `ERR_AMP_TRUNCATED`.
   */
  end(): void {
    if (this.pendingBytes > 0)
      throw new AmpError(
        'ERR_AMP_TRUNCATED',
        `AMP stream ended inside a box (${this.pendingBytes} bytes)`,
      );
  }

  /** Pairs are taken out of the buffer as soon as each is whole: it holds at most one pair. */
  #next(): AmpBox | undefined {
    for (;;) {
      const buf = this.#buffer;
      if (buf.length < 2) return undefined;
      const keyLength = buf.readUInt16BE(0);
      if (keyLength === 0) {
        const box = this.#box;
        this.#box = new Map();
        this.#boxBytes = 0;
        this.#buffer = buf.subarray(2);
        return box;
      }
      if (keyLength > AMP_MAX_KEY_BYTES)
        throw new AmpError('ERR_AMP_TOO_LONG', `AMP key length ${keyLength} (at most 255)`);
      if (this.#box.size >= this.#maxBoxKeys)
        throw new AmpError('ERR_AMP_BAD_BOX', `AMP box with more than ${this.#maxBoxKeys} keys`);
      const keyEnd = 2 + keyLength;
      if (buf.length < keyEnd + 2) return undefined;
      const valueLength = buf.readUInt16BE(keyEnd);
      const valueEnd = keyEnd + 2 + valueLength;
      if (this.#boxBytes + valueEnd > this.#maxBoxBytes)
        throw new AmpError('ERR_AMP_BAD_BOX', `AMP box over ${this.#maxBoxBytes} bytes`);
      if (buf.length < valueEnd) return undefined;
      const key = buf.toString('latin1', 2, keyEnd);
      if (this.#box.has(key))
        throw new AmpError('ERR_AMP_BAD_BOX', `AMP box gives key "${key}" twice`);
      this.#box.set(key, Buffer.from(buf.subarray(keyEnd + 2, valueEnd)));
      this.#boxBytes += valueEnd;
      this.#buffer = buf.subarray(valueEnd);
    }
  }
}

/**
 * Decodes a buffer holding whole boxes only.
 * @throws AmpError as {@link AmpBoxDecoder.push}, or `ERR_AMP_TRUNCATED` when bytes are left over.
 */
export function decodeBoxes(bytes: Uint8Array, options?: AmpBoxDecoderOptions): AmpBox[] {
  const decoder = new AmpBoxDecoder(options);
  const boxes = decoder.push(bytes);
  decoder.end();
  return boxes;
}
