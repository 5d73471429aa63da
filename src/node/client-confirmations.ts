/**
 * Delivery confirmation of privmsgs sent for the application (docs/protocol.md §13.2 "Confirmed
 * privmsgs"). The channel has no acknowledgement, but a directory node or a peer handles the
 * lines of one connection in order and answers a 798 ping with a 799 pong (docs/protocol.md §4.7):
 * a pong that answers a ping we wrote after our privmsgs means the route has handled every one of
 * them. So after a turn in which privmsgs were written to a connection, one 798 goes out behind
 * them; at most one such ping waits per connection, and privmsgs written while it waits are
 * covered by the next one, sent when its pong arrives. Keepalive probes (directory-links.ts) go
 * through {@link PrivmsgConfirmations.ping} too, so pongs are matched to pings in order.
 *
 * A privmsg whose connection closes, or that is not confirmed within its deadline, is handed back
 * to its owner (the router), which re-sends it through another route or reports the failure.
 */
import { OnionmcError } from '../errors.js';
import type { PeerConnection } from '../peer/connection.js';
import { MessageType } from '../wire/message-types.js';

/**
 * How long a privmsg written to a route may wait for the route's pong before the route counts as
 * failed for it (it is then re-sent elsewhere or reported): a round trip over Tor takes seconds,
 * 60 s allows for a slow circuit (the handshake deadline is the same).
 */
export const PRIVMSG_CONFIRM_TIMEOUT_MS = 60_000;

/**
 * At most this many privmsgs sent for the application wait for confirmation at once; more are
 * refused with `ERR_BUSY`. Each holds its frame (at most 40,000 bytes, docs/protocol.md §1.3), so
 * this bounds what an application can make the node hold: about 10 MB.
 */
export const MAX_PENDING_CONFIRMATIONS = 256;

/** Why a route failed a privmsg before confirming it. */
export type RouteFailure = 'closed' | 'timeout';

/** A privmsg waiting for the route it was written to; owned by the router. */
export interface PendingConfirmation {
  /** The connection it was written to and waits on; undefined between routes. */
  conn: PeerConnection | undefined;
  /** Its deadline on that connection. */
  timer: NodeJS.Timeout | undefined;
  /** The route's pong covered it. */
  onConfirmed(): void;
  /** The route closed, or the deadline passed, before that. */
  onRouteFailed(reason: RouteFailure): void;
}

/** The pings of one connection: what the next ping covers, and what each outstanding one covers. */
interface Ledger {
  /** Written since the last ping went out. */
  readonly unpinged: Set<PendingConfirmation>;
  /** One entry per ping sent and not yet answered, oldest first. */
  readonly outstanding: Set<PendingConfirmation>[];
  /** A ping is due at the end of this turn. */
  scheduled: boolean;
}

/** Matches 799 pongs to the privmsgs written before the 798 pings they answer. */
export class PrivmsgConfirmations {
  readonly #ledgers = new Map<PeerConnection, Ledger>();
  readonly #timeoutMs: number;
  readonly #maxPending: number;
  readonly #now: () => number;
  #pending = 0;

  /**
   * @param options.now the node's clock: a ping is recorded as a liveness probe at that time
   *   ({@link PeerConnection.markProbed}), so a directory link that answers nothing after it is
   *   dropped by the keepalive (directory-links.ts) as after any probe.
   */
  constructor(options: { timeoutMs?: number; maxPending?: number; now?: () => number } = {}) {
    this.#timeoutMs = options.timeoutMs ?? PRIVMSG_CONFIRM_TIMEOUT_MS;
    this.#maxPending = options.maxPending ?? MAX_PENDING_CONFIRMATIONS;
    this.#now = options.now ?? Date.now;
  }

  /** The deadline of a privmsg on one route, in ms. */
  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /** Privmsgs sent for the application and not yet answered (confirmed or failed). */
  get pending(): number {
    return this.#pending;
  }

  /** Connections with pings or privmsgs outstanding (for tests: nothing is left behind). */
  get connections(): number {
    return this.#ledgers.size;
  }

  /**
   * Takes one of the {@link MAX_PENDING_CONFIRMATIONS} places; give it back with {@link release}.
   * @throws OnionmcError `ERR_BUSY` when every place is taken.
   */
  reserve(): void {
    if (this.#pending >= this.#maxPending)
      throw new OnionmcError(
        'ERR_BUSY',
        `${this.#maxPending} messages (privmsgs and pubmsgs) already wait for confirmation; retry when some are answered`,
      );
    this.#pending++;
  }

  /** Gives back a place taken by {@link reserve}. */
  release(): void {
    this.#pending--;
  }

  /**
   * `pending` was just written to `conn` (whose other side advertised `ping`, and we did): it is
   * confirmed by the pong to a ping sent after it, at the end of this turn or once the ping
   * outstanding on `conn` is answered.
   */
  track(pending: PendingConfirmation, conn: PeerConnection): void {
    const ledger = this.#ledger(conn);
    pending.conn = conn;
    ledger.unpinged.add(pending);
    clearTimeout(pending.timer);
    pending.timer = setTimeout(() => {
      pending.timer = undefined;
      this.#forget(pending);
      pending.onRouteFailed('timeout');
    }, this.#timeoutMs);
    pending.timer.unref();
    if (ledger.outstanding.length > 0 || ledger.scheduled) return;
    ledger.scheduled = true;
    // After the rest of this turn's privmsgs to the same connection: one ping covers them all.
    queueMicrotask(() => {
      ledger.scheduled = false;
      if (
        this.#ledgers.get(conn) === ledger &&
        ledger.outstanding.length === 0 &&
        ledger.unpinged.size > 0
      )
        this.ping(conn);
    });
  }

  /**
   * Sends a 798 on `conn` covering everything written to it so far; its 799 confirms them. Only
   * for a connection whose other side advertised `ping` (docs/protocol.md §1.4, §4.7).
   */
  ping(conn: PeerConnection): void {
    if (!conn.isOpen) return;
    const ledger = this.#ledger(conn);
    if (!conn.send(MessageType.PING, '')) return;
    conn.markProbed(this.#now());
    ledger.outstanding.push(new Set(ledger.unpinged));
    ledger.unpinged.clear();
  }

  /** A 799 arrived on `conn`: it answers the oldest outstanding ping. */
  onPong(conn: PeerConnection): void {
    const ledger = this.#ledgers.get(conn);
    if (ledger === undefined) return;
    const answered = ledger.outstanding.shift();
    if (ledger.outstanding.length === 0 && ledger.unpinged.size > 0) this.ping(conn);
    else if (ledger.outstanding.length === 0 && !ledger.scheduled) this.#ledgers.delete(conn);
    for (const pending of answered ?? []) {
      if (pending.conn !== conn) continue;
      clearTimeout(pending.timer);
      pending.timer = undefined;
      pending.conn = undefined;
      pending.onConfirmed();
    }
  }

  /** `conn` closed: whatever waits on it failed there. */
  onClose(conn: PeerConnection): void {
    const ledger = this.#ledgers.get(conn);
    if (ledger === undefined) return;
    this.#ledgers.delete(conn);
    const waiting = [...ledger.outstanding.flatMap((s) => [...s]), ...ledger.unpinged];
    for (const pending of waiting) {
      if (pending.conn !== conn) continue;
      clearTimeout(pending.timer);
      pending.timer = undefined;
      pending.conn = undefined;
      pending.onRouteFailed('closed');
    }
  }

  #ledger(conn: PeerConnection): Ledger {
    let ledger = this.#ledgers.get(conn);
    if (ledger === undefined) {
      ledger = { unpinged: new Set(), outstanding: [], scheduled: false };
      this.#ledgers.set(conn, ledger);
    }
    return ledger;
  }

  /** Takes `pending` out of its connection's ledger (its deadline passed). */
  #forget(pending: PendingConfirmation): void {
    const conn = pending.conn;
    pending.conn = undefined;
    if (conn === undefined) return;
    const ledger = this.#ledgers.get(conn);
    if (ledger === undefined) return;
    ledger.unpinged.delete(pending);
    for (const covered of ledger.outstanding) covered.delete(pending);
  }
}
