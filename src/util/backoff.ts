/**
 * The one reconnect backoff of onionmc (directory links, direct redials, the onion service). Shaped like the reference's (docs/protocol.md §4.6: 4 s × 1.5ⁿ with a
 * jitter of −1…+5 s) but capped lower, and reset after a stable connection, which the reference
 * never does (so one bad hour there means hours of silence).
 */

/** Parameters of a {@link Backoff}; all durations in ms. */
export interface BackoffOptions {
  /** Base delay; multiplied by `factor` before each scheduling (docs/protocol.md §4.6: 4,000). */
  readonly initialMs: number;
  /** Growth per attempt (docs/protocol.md §4.6: 1.5). */
  readonly factor: number;
  /** Upper bound of the delay before jitter. */
  readonly maxMs: number;
  /** Jitter added to every delay, uniform in [min, max] (docs/protocol.md §4.6: −1,000…+5,000). */
  readonly jitterMs: readonly [number, number];
  /** A connection that stayed up this long resets the backoff. */
  readonly stableMs: number;
}

/** Defaults: the reference's 4 s × 1.5ⁿ and jitter, capped at 10 minutes, reset after 60 s up. */
export const DEFAULT_DIRECTORY_BACKOFF: BackoffOptions = {
  initialMs: 4_000,
  factor: 1.5,
  maxMs: 600_000,
  jitterMs: [-1_000, 5_000],
  stableMs: 60_000,
};

/** Exponential backoff with jitter and reset. */
export class Backoff {
  readonly options: BackoffOptions;
  readonly #random: () => number;
  #attempts = 0;

  constructor(
    options: BackoffOptions = DEFAULT_DIRECTORY_BACKOFF,
    random: () => number = Math.random,
  ) {
    this.options = options;
    this.#random = random;
  }

  /** Failed attempts since the last reset. */
  get attempts(): number {
    return this.#attempts;
  }

  /** The delay before the next attempt, in ms (never negative); counts one attempt. */
  next(): number {
    this.#attempts++;
    const { initialMs, factor, maxMs, jitterMs } = this.options;
    const base = Math.min(maxMs, initialMs * factor ** this.#attempts);
    const jitter = jitterMs[0] + this.#random() * (jitterMs[1] - jitterMs[0]);
    return Math.max(0, Math.round(base + jitter));
  }

  /** Starts over from the first delay. */
  reset(): void {
    this.#attempts = 0;
  }
}
