import { describe, expect, it } from 'vitest';
import { Backoff, DEFAULT_DIRECTORY_BACKOFF } from '../../src/node/backoff.js';

describe('Backoff', () => {
  it('grows as the reference does (4 s × 1.5ⁿ, docs/protocol.md §4.6), capped, with jitter in range', () => {
    const noJitter = new Backoff({ ...DEFAULT_DIRECTORY_BACKOFF, jitterMs: [0, 0] });
    expect([1, 2, 3, 4].map(() => noJitter.next())).toEqual([6_000, 9_000, 13_500, 20_250]);
    for (let i = 0; i < 30; i++) noJitter.next();
    expect(noJitter.next()).toBe(DEFAULT_DIRECTORY_BACKOFF.maxMs);
    const low = new Backoff(DEFAULT_DIRECTORY_BACKOFF, () => 0);
    const high = new Backoff(DEFAULT_DIRECTORY_BACKOFF, () => 0.999999);
    expect(low.next()).toBe(5_000);
    expect(high.next()).toBe(11_000);
  });

  it('starts over after reset (a stable connection), which the reference never does', () => {
    const backoff = new Backoff({ ...DEFAULT_DIRECTORY_BACKOFF, jitterMs: [0, 0] });
    backoff.next();
    backoff.next();
    expect(backoff.attempts).toBe(2);
    backoff.reset();
    expect(backoff.attempts).toBe(0);
    expect(backoff.next()).toBe(6_000);
  });

  it('never returns a negative delay', () => {
    const backoff = new Backoff(
      { initialMs: 10, factor: 1, maxMs: 10, jitterMs: [-1_000, -500], stableMs: 1 },
      () => 0,
    );
    expect(backoff.next()).toBe(0);
  });
});
