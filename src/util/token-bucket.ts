/**
 * A token bucket: `ratePerSecond` tokens are added per second up to `burst`; a caller spends
 * tokens with {@link TokenBucket.take}. The clock is injected (ms), so tests need no timers. Costs
 * O(1) per call and holds no timer: refilling is computed from the time elapsed.
 */

/** Rate and burst of a {@link TokenBucket}. */
export interface TokenBucketPolicy {
  /** Tokens added per second (sustained rate); 0 disables refilling. */
  readonly ratePerSecond: number;
  /** Capacity: the most tokens the bucket holds (burst); the bucket starts full. */
  readonly burst: number;
}

/** One token bucket. */
export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #at: number;

  /**
   * @param policy rate (tokens/s) and burst (tokens); both finite and >= 0.
   * @param now clock in ms; default `Date.now`.
   */
  constructor(policy: TokenBucketPolicy, now: () => number = Date.now) {
    this.#rate = policy.ratePerSecond;
    this.#burst = policy.burst;
    this.#now = now;
    this.#tokens = policy.burst;
    this.#at = now();
  }

  /** Tokens available now (after refilling), possibly fractional. */
  get available(): number {
    this.#refill();
    return this.#tokens;
  }

  /**
   * Spends `cost` tokens when that many are available.
   * @returns true when spent, false (nothing spent) when the bucket holds fewer than `cost`.
   */
  take(cost = 1): boolean {
    this.#refill();
    if (this.#tokens < cost) return false;
    this.#tokens -= cost;
    return true;
  }

  /**
   * Spends `cost` tokens whether or not the bucket holds them: it may go into debt, which the
   * rate pays off (for a cost known only once the work is done, such as the length of a line
   * already received). A bucket without refilling (rate 0) stays in debt.
   * @returns ms until the bucket is out of debt again; 0 when it is not in debt.
   */
  spend(cost: number): number {
    this.#refill();
    this.#tokens -= cost;
    if (this.#tokens >= 0) return 0;
    return this.#rate > 0 ? (-this.#tokens * 1000) / this.#rate : Infinity;
  }

  #refill(): void {
    const now = this.#now();
    const elapsed = now - this.#at;
    if (elapsed <= 0) return;
    this.#at = now;
    this.#tokens = Math.min(this.#burst, this.#tokens + (elapsed * this.#rate) / 1000);
  }
}
