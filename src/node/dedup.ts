/**
 * Duplicate suppression: with N directory nodes every pubmsg reaches a peer up to N times, and a
 * reference maker answers each `!orderbook` copy (docs/protocol.md §4.2, §10 "Deduplicate"). A message seen
 * again within the window is dropped. Entries expire in insertion order, so each check is O(1)
 * amortized and memory is bounded by `maxEntries`.
 */

/** ng's deduplication window (docs/protocol.md §9.3). */
export const DEDUP_WINDOW_MS = 30_000;
/** Upper bound on remembered messages. */
export const DEDUP_MAX_ENTRIES = 100_000;

/** Remembers message keys for a time window. */
export class DuplicateFilter {
  readonly #seen = new Map<string, number>();
  readonly #windowMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(options: { windowMs?: number; maxEntries?: number; now?: () => number } = {}) {
    this.#windowMs = options.windowMs ?? DEDUP_WINDOW_MS;
    this.#maxEntries = options.maxEntries ?? DEDUP_MAX_ENTRIES;
    this.#now = options.now ?? Date.now;
  }

  /** True the first time `key` is seen within the window (and remembers it); false for a repeat. */
  isFirst(key: string): boolean {
    const now = this.#now();
    for (const [oldKey, expiresAt] of this.#seen) {
      if (expiresAt > now && this.#seen.size < this.#maxEntries) break;
      this.#seen.delete(oldKey);
    }
    const expiresAt = this.#seen.get(key);
    if (expiresAt !== undefined && expiresAt > now) return false;
    this.#seen.delete(key);
    this.#seen.set(key, now + this.#windowMs);
    return true;
  }

  /** Number of remembered keys. */
  get size(): number {
    return this.#seen.size;
  }
}
