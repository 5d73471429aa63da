/**
 * Named counters for what a node did and dropped, shown by the local API and in logs. A map of
 * numbers keyed by a short reason, so adding a reason costs nothing elsewhere.
 */

/** Monotonic counters keyed by name (e.g. `relayed.privmsg`, `dropped.bad-signature`). */
export class Counters {
  readonly #values = new Map<string, number>();

  /** Adds `by` (default 1) to the counter `name`. */
  add(name: string, by = 1): void {
    this.#values.set(name, (this.#values.get(name) ?? 0) + by);
  }

  /** The current value of `name` (0 when never counted). */
  get(name: string): number {
    return this.#values.get(name) ?? 0;
  }

  /** A plain-object snapshot, keys sorted. */
  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.#values.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }
}
