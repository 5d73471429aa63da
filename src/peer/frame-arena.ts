/**
 * A reused slab for the frames a directory node relays one recipient at a time (privmsgs), so that
 * relaying allocates no memory per frame.
 *
 * Why: every Buffer is memory outside V8's heap, and V8 counts such memory allocated since its
 * last full collection against the old generation's limit. At a flood of privmsgs (one ~450-byte
 * frame each, some 20 MB/s) that forced a full mark-compact about every 200 ms, each costing time
 * in proportion to the whole heap, i.e. to the number of connected peers: at 10,000 peers it was
 * the largest cost per privmsg beyond the work itself (docs/performance.md, "Memory per
 * privmsg").
 *
 * How it stays safe: a frame taken from the slab is handed to one connection's queue and given
 * back ({@link FrameArena.release}) when that connection writes it or drops it; the slab is
 * reused from its start only once every frame taken from it was given back, and abandoned (left to
 * the GC, a new slab taken) as soon as one was given back still held by a socket (a write the
 * kernel did not take at once, which Node keeps until it is sent).
 */

import type { FrameAllocator } from '../wire/envelope.js';

/** Bytes of one slab: some 580 relayed privmsgs of one event-loop turn. */
export const FRAME_ARENA_BYTES = 256 * 1024;

/** Frames longer than this are allocated on their own, not carved from the slab. */
export const FRAME_ARENA_MAX_FRAME_BYTES = 8 * 1024;

/**
 * Frames carved from one reused slab. Each frame taken must be queued to ONE connection, which
 * gives it back exactly once; a frame given back twice could let the slab be reused under a frame
 * still queued.
 */
export class FrameArena implements FrameAllocator {
  readonly #size: number;
  #slab: Buffer;
  #used = 0;
  /** Frames taken from the current slab and not yet given back. */
  #outstanding = 0;

  /**
   * @param size bytes per slab; a positive integer.
   * @throws RangeError for a size out of range.
   */
  constructor(size: number = FRAME_ARENA_BYTES) {
    if (!Number.isSafeInteger(size) || size < 1) {
      throw new RangeError(`size must be a positive integer, got ${String(size)}`);
    }
    this.#size = size;
    this.#slab = Buffer.allocUnsafeSlow(size);
  }

  /**
   * A frame of `bytes` bytes: a view of the slab when it fits, else a Buffer of its own (which
   * {@link release} ignores).
   */
  take(bytes: number): Buffer {
    if (bytes > FRAME_ARENA_MAX_FRAME_BYTES || this.#used + bytes > this.#size) {
      return Buffer.allocUnsafe(bytes);
    }
    const frame = this.#slab.subarray(this.#used, this.#used + bytes);
    this.#used += bytes;
    this.#outstanding++;
    return frame;
  }

  /** Whether `frame` is a view of the current slab (taken and not yet given back). */
  owns(frame: Uint8Array): boolean {
    return frame.buffer === this.#slab.buffer;
  }

  /**
   * Gives a frame back: it was written, or dropped unsent. `retained`: the socket still holds it
   * (the write did not complete at once); the slab is then abandoned to the GC and a new one
   * taken. Frames not from the current slab are ignored.
   */
  release(frame: Uint8Array, retained: boolean): void {
    if (!this.owns(frame)) return;
    if (retained) {
      this.#slab = Buffer.allocUnsafeSlow(this.#size);
      this.#used = 0;
      this.#outstanding = 0;
      return;
    }
    if (--this.#outstanding === 0) this.#used = 0;
  }

  /** Frames taken from the current slab and not given back (for tests). */
  get outstanding(): number {
    return this.#outstanding;
  }

  /** Bytes of the current slab in use (for tests). */
  get used(): number {
    return this.#used;
  }
}

/** The process-wide arena that {@link PeerConnection} gives frames back to. */
export const frameArena = new FrameArena();
