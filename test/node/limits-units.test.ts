/**
 * Unit tests of the fairness mechanisms with an injected clock: the token bucket
 * (src/util/token-bucket.ts) and the fair read scheduler (src/peer/fair-reader.ts).
 */
import { describe, expect, it } from 'vitest';
import { FairReadScheduler, type FairReadable } from '../../src/peer/fair-reader.js';
import { TokenBucket } from '../../src/util/token-bucket.js';

describe('TokenBucket', () => {
  it('allows the burst, then refills at the rate, never above the burst', () => {
    const clock = { now: 0 };
    const bucket = new TokenBucket({ ratePerSecond: 10, burst: 5 }, () => clock.now);
    for (let i = 0; i < 5; i++) expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
    clock.now += 100; // one token
    expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
    clock.now += 60_000;
    expect(bucket.available).toBe(5);
  });

  it('charges a cost at once or not at all', () => {
    const clock = { now: 0 };
    const bucket = new TokenBucket({ ratePerSecond: 1, burst: 10 }, () => clock.now);
    expect(bucket.take(7)).toBe(true);
    expect(bucket.take(4)).toBe(false);
    expect(bucket.available).toBe(3);
    expect(bucket.take(3)).toBe(true);
  });

  it('spends into debt and says how long the rate takes to pay it off', () => {
    const clock = { now: 0 };
    const bucket = new TokenBucket({ ratePerSecond: 1_000, burst: 100 }, () => clock.now);
    expect(bucket.spend(60)).toBe(0);
    expect(bucket.spend(90)).toBe(50); // 50 tokens of debt at 1,000/s
    expect(bucket.take()).toBe(false);
    clock.now += 50;
    expect(bucket.available).toBe(0);
    expect(bucket.spend(0)).toBe(0);
    const never = new TokenBucket({ ratePerSecond: 0, burst: 1 }, () => clock.now);
    expect(never.spend(2)).toBe(Infinity);
  });

  it('ignores a clock that goes back', () => {
    const clock = { now: 1_000 };
    const bucket = new TokenBucket({ ratePerSecond: 1, burst: 1 }, () => clock.now);
    expect(bucket.take()).toBe(true);
    clock.now = 0;
    expect(bucket.take()).toBe(false);
  });
});

/** A reader with `lines` waiting that records when each was handled. */
class FakeReader implements FairReadable {
  constructor(
    readonly name: string,
    public lines: number,
    readonly log: string[],
  ) {}

  drainSome(max: number): boolean {
    const n = Math.min(max, this.lines);
    for (let i = 0; i < n; i++) this.log.push(this.name);
    this.lines -= n;
    return this.lines > 0;
  }
}

describe('FairReadScheduler', () => {
  it('serves readers round-robin, linesPerTurn each, so a backlog does not starve others', () => {
    const scheduler = new FairReadScheduler(2);
    const log: string[] = [];
    const flood = new FakeReader('flood', 6, log);
    const quiet = new FakeReader('quiet', 1, log);
    scheduler.add(flood);
    scheduler.add(quiet);
    scheduler.runRound();
    expect(log).toEqual(['flood', 'flood', 'quiet']);
    expect(scheduler.waiting).toBe(1);
    scheduler.runRound();
    scheduler.runRound();
    expect(log.slice(3)).toEqual(['flood', 'flood', 'flood', 'flood']);
    expect(scheduler.waiting).toBe(0);
  });

  it('forgets a deleted reader', () => {
    const scheduler = new FairReadScheduler(1);
    const log: string[] = [];
    const reader = new FakeReader('r', 3, log);
    scheduler.add(reader);
    scheduler.delete(reader);
    scheduler.runRound();
    expect(log).toEqual([]);
    expect(scheduler.waiting).toBe(0);
  });

  it('runs rounds by itself until every line is handled', async () => {
    const scheduler = new FairReadScheduler(3);
    const log: string[] = [];
    scheduler.add(new FakeReader('a', 10, log));
    scheduler.add(new FakeReader('b', 4, log));
    while (scheduler.waiting > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(log.filter((n) => n === 'a')).toHaveLength(10);
    expect(log.filter((n) => n === 'b')).toHaveLength(4);
    // Three lines each per round: b finishes in its second round, long before a.
    expect(log.join('')).toBe('aaabbbaaabaaaa');
  });

  it('ends a round after its time slice; readers it did not reach are served first next round', () => {
    const clock = { now: 0 };
    const scheduler = new FairReadScheduler(1, 1, () => clock.now);
    const log: string[] = [];
    // Each drain takes 0.6 ms of the injected clock.
    class SlowReader extends FakeReader {
      override drainSome(max: number): boolean {
        clock.now += 0.6;
        return super.drainSome(max);
      }
    }
    for (const name of ['a', 'b', 'c', 'd']) scheduler.add(new SlowReader(name, 2, log));
    scheduler.runRound();
    expect(log).toEqual(['a', 'b']);
    scheduler.runRound();
    expect(log).toEqual(['a', 'b', 'c', 'd']);
    scheduler.runRound();
    expect(log.slice(4)).toEqual(['a', 'b']);
    scheduler.runRound();
    expect(log.slice(6)).toEqual(['c', 'd']);
    expect(scheduler.waiting).toBe(0);
  });

  it("gives each reader the round's clock, so one reader's costly lines end its turn early", () => {
    const clock = { now: 0 };
    const scheduler = new FairReadScheduler(16, 1, () => clock.now);
    const log: string[] = [];
    // 0.4 ms per line, stopping when told the slice is spent (as PeerConnection does).
    class CostlyReader extends FakeReader {
      override drainSome(max: number, timeUp?: () => boolean): boolean {
        for (let i = 0; i < max && this.lines > 0; i++) {
          clock.now += 0.4;
          this.log.push(this.name);
          this.lines--;
          if (timeUp?.() === true) break;
        }
        return this.lines > 0;
      }
    }
    scheduler.add(new CostlyReader('flood', 10, log));
    scheduler.add(new FakeReader('quiet', 1, log));
    scheduler.runRound();
    // Three lines make 1.2 ms, past the 1 ms slice: the round ends; quiet goes first next.
    expect(log).toEqual(['flood', 'flood', 'flood']);
    scheduler.runRound();
    expect(log.slice(3)).toEqual(['quiet', 'flood', 'flood', 'flood']);
  });

  it('lets lines be handled on arrival only for a time slice per event-loop iteration', async () => {
    const clock = { now: 100 };
    const scheduler = new FairReadScheduler(16, 1, () => clock.now);
    expect(scheduler.mayHandleNow()).toBe(true);
    clock.now += 0.9;
    expect(scheduler.mayHandleNow()).toBe(true);
    clock.now += 0.2;
    expect(scheduler.mayHandleNow()).toBe(false);
    // The next iteration has a fresh slice.
    await new Promise<void>((resolve) => setImmediate(resolve));
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(scheduler.mayHandleNow()).toBe(true);
  });
});
