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

/**
 * Why a node dropped a message: a closed set, each counted under exactly one counter name,
 * `dropped.<reason>` (see {@link dropCounter}).
 */
export type DropReason =
  /** A 685/687 or 791 from a connection that has not completed its handshake. */
  | 'not-handshaked'
  /** Not `from!to!message` (docs/protocol.md §4.1). */
  | 'malformed'
  /** The sender nick is not the one its connection handshaked with. */
  | 'spoofed-sender'
  /** A pubmsg not addressed to PUBLIC, or not from a directory. */
  | 'pubmsg-not-public'
  /** A sender nick that is not a JoinMarket nick. */
  | 'bad-nick'
  /** A privmsg for another nick. */
  | 'not-for-us'
  /** A privmsg whose signature does not verify (docs/protocol.md §5.6). */
  | 'bad-signature'
  /** A privmsg whose end-to-end encryption or key exchange failed (docs/protocol.md §7). */
  | 'crypto'
  /** Seen again within the deduplication window. */
  | 'duplicate'
  /** A privmsg for a nick the directory does not carry (docs/protocol.md §4.4). */
  | 'unknown-recipient'
  /** A pubmsg or privmsg whose relayed line would exceed 40,000 bytes (docs/protocol.md §1.3). */
  | 'too-long'
  /** Too many privmsgs already wait for an outside signature verifier. */
  | 'overloaded'
  /** Over the connection's message bucket (docs/limits.md). */
  | 'rate-limited'
  /** A pubmsg over the connection's fan-out (delivery) budget (docs/limits.md). */
  | 'fanout-limited'
  /** An `!orderbook` pubmsg over the connection's `!orderbook` bucket (docs/limits.md). */
  | 'orderbook-limited'
  /** A getpeerlist over the connection's getpeerlist bucket (docs/limits.md). */
  | 'getpeerlist-limited'
  /** A pubmsg over the node-wide fan-out budget (docs/limits.md). */
  | 'node-fanout-limited';

/** The one counter name of a drop reason. */
export function dropCounter(reason: DropReason): `dropped.${DropReason}` {
  return `dropped.${reason}`;
}
