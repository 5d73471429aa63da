/**
 * FrameArena: frames are carved one after another from one slab, which is reused from its start
 * only when every frame taken was given back, and abandoned when one was still held by a socket.
 */
import { describe, expect, it } from 'vitest';
import { FRAME_ARENA_MAX_FRAME_BYTES, FrameArena } from '../../src/peer/frame-arena.js';

describe('FrameArena', () => {
  it('carves frames one after another and starts over once all are given back', () => {
    const arena = new FrameArena(1024);
    const a = arena.take(100);
    const b = arena.take(200);
    expect(a.buffer).toBe(b.buffer);
    expect(b.byteOffset).toBe(a.byteOffset + 100);
    expect([arena.outstanding, arena.used]).toEqual([2, 300]);
    arena.release(a, false);
    expect([arena.outstanding, arena.used]).toEqual([1, 300]);
    arena.release(b, false);
    expect([arena.outstanding, arena.used]).toEqual([0, 0]);
    expect(arena.take(50).byteOffset).toBe(a.byteOffset);
  });

  it('abandons the slab when a frame is given back still held, and ignores the old frames after', () => {
    const arena = new FrameArena(1024);
    const held = arena.take(100);
    const other = arena.take(100);
    arena.release(held, true);
    expect(arena.owns(held)).toBe(false);
    expect([arena.outstanding, arena.used]).toEqual([0, 0]);
    const next = arena.take(100);
    expect(next.buffer).not.toBe(held.buffer);
    // A frame of the abandoned slab changes nothing of the new one.
    arena.release(other, false);
    expect([arena.outstanding, arena.used]).toEqual([1, 100]);
  });

  it('allocates frames that do not fit on their own, and release ignores them', () => {
    const arena = new FrameArena(1024);
    const big = arena.take(FRAME_ARENA_MAX_FRAME_BYTES + 1);
    expect(big.length).toBe(FRAME_ARENA_MAX_FRAME_BYTES + 1);
    expect(arena.owns(big)).toBe(false);
    const most = arena.take(1000);
    const over = arena.take(100);
    expect(arena.owns(most)).toBe(true);
    expect(arena.owns(over)).toBe(false);
    arena.release(over, true);
    arena.release(big, true);
    expect([arena.outstanding, arena.used]).toEqual([1, 1000]);
  });

  it('refuses a slab size that is not a positive integer', () => {
    expect(() => new FrameArena(0)).toThrow(RangeError);
    expect(() => new FrameArena(1.5)).toThrow(RangeError);
  });
});
