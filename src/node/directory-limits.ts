/**
 * Fairness limits of a directory node (docs/limits.md): per-connection token buckets for messages,
 * pubmsg fan-out, `!orderbook` pubmsgs and getpeerlist; a node-wide fan-out budget; and the
 * offence budget after which a flooding peer is disconnected and its nick refused for a while.
 * ng has one bucket of 500 messages/s with bursts of 1,000 and never disconnects (docs/protocol.md
 * §9.3); our message bucket is as strict, and the others are stricter. Everything is keyed by
 * connection and nick, never by address: behind Tor every peer comes from 127.0.0.1.
 */
import type { Logger } from '../log.js';
import { splitCommands } from '../message/commands.js';
import { TokenBucket, type TokenBucketPolicy } from '../util/token-bucket.js';
import { type Counters, type DropReason, dropCounter } from './counters.js';
import type { DirectoryPeer } from './directory-types.js';

/** Every limit of {@link DirectoryLimits}; rates per second, bursts in the same unit. */
export interface DirectoryLimitsPolicy {
  /** Messages (any envelope) per connection. ng: 500/s, burst 1,000 (docs/protocol.md §9.3). */
  readonly messages: TokenBucketPolicy;
  /**
   * Bytes of received lines handled per connection: a peer over it is read slower, nothing is
   * dropped (src/peer/connection.ts `readRate`). The message bucket counts lines whatever their
   * length, so without this one connection could make the node handle 500 lines of 40,000 bytes
   * (docs/protocol.md §1.3) a second, 20 MB/s.
   */
  readonly readBytes: TokenBucketPolicy;
  /**
   * Pubmsg delivery units per connection: a pubmsg relayed to N peers costs N units per started
   * KiB of the frame sent to each ({@link DELIVERY_UNIT_BYTES}), so N for an ordinary offer or
   * `!orderbook`.
   */
  readonly deliveries: TokenBucketPolicy;
  /** Pubmsgs with an `!orderbook` command, in any part ({@link requestsOrderbook}), per connection. */
  readonly orderbook: TokenBucketPolicy;
  /** getpeerlist (791) requests per connection. */
  readonly getpeerlist: TokenBucketPolicy;
  /** Pubmsg deliveries of the whole node, all connections together. */
  readonly globalDeliveries: TokenBucketPolicy;
  /**
   * Over-limit messages a connection may send: each one drop takes a token, and each
   * {@link READ_WAIT_MS_PER_OFFENCE} ms waited over the read rate one; with none left the peer is
   * disconnected (`flooding`) and, if it had proven its right to its nick (handshaked, and so
   * verified after negotiated nick authentication), its nick refused for {@link banMs}.
   */
  readonly offences: TokenBucketPolicy;
  /** How long a disconnected flooder's nick is refused at handshake, in ms. */
  readonly banMs: number;
}

/** Defaults (docs/limits.md). */
export const DEFAULT_DIRECTORY_LIMITS: DirectoryLimitsPolicy = {
  messages: { ratePerSecond: 500, burst: 1_000 },
  readBytes: { ratePerSecond: 1_000_000, burst: 2_000_000 },
  deliveries: { ratePerSecond: 20_000, burst: 40_000 },
  orderbook: { ratePerSecond: 0.1, burst: 3 },
  getpeerlist: { ratePerSecond: 0.1, burst: 3 },
  globalDeliveries: { ratePerSecond: 100_000, burst: 200_000 },
  offences: { ratePerSecond: 50, burst: 500 },
  banMs: 300_000,
};

/**
 * Bytes of a pubmsg line that one delivery unit pays for: a relayed line costs one unit per started
 * 1,024 bytes per recipient, so a peer cannot multiply the node's output with long pubmsgs (up to
 * 40,000 bytes, docs/protocol.md §1.3) at the price of short ones.
 */
export const DELIVERY_UNIT_BYTES = 1024;

/**
 * Ms a connection waits over its read rate per offence it is charged
 * ({@link DirectoryLimits.readThrottled}). A peer that keeps sending faster than its read rate
 * waits all the time, 100 offences a second: twice what the default offence rate pays back, so it
 * is disconnected after about 10 s (burst 500 / (100 - 50) per s). A burst that is over the rate for
 * under half the time is never disconnected for it.
 */
export const READ_WAIT_MS_PER_OFFENCE = 10;

/** Most nicks remembered as refused; the oldest ban is forgotten first beyond it. */
export const MAX_BANNED_NICKS = 10_000;

/**
 * One connection's buckets (created at accept, dropped with the connection). `messages`, charged
 * for every line, is made at once; the others when first charged: a bucket starts full and never
 * holds more than full, so one made at its first use holds what one made at accept would, and
 * most connections never send a pubmsg or getpeerlist (four objects less per peer).
 */
export class PeerBuckets {
  readonly messages: TokenBucket;
  readonly #policy: DirectoryLimitsPolicy;
  readonly #now: () => number;
  #deliveries: TokenBucket | undefined;
  #orderbook: TokenBucket | undefined;
  #getpeerlist: TokenBucket | undefined;
  #offences: TokenBucket | undefined;

  constructor(policy: DirectoryLimitsPolicy, now: () => number) {
    this.messages = new TokenBucket(policy.messages, now);
    this.#policy = policy;
    this.#now = now;
  }

  get deliveries(): TokenBucket {
    return (this.#deliveries ??= new TokenBucket(this.#policy.deliveries, this.#now));
  }

  get orderbook(): TokenBucket {
    return (this.#orderbook ??= new TokenBucket(this.#policy.orderbook, this.#now));
  }

  get getpeerlist(): TokenBucket {
    return (this.#getpeerlist ??= new TokenBucket(this.#policy.getpeerlist, this.#now));
  }

  get offences(): TokenBucket {
    return (this.#offences ??= new TokenBucket(this.#policy.offences, this.#now));
  }
}

/**
 * True when `message` (a pubmsg's text) asks makers for their offers: one of its commands, as
 * receivers split it on `!` (docs/protocol.md §5.1, {@link splitCommands}), starts with
 * `orderbook`. A reference maker answers `!cancel 0!orderbook` or `!!orderbook` as it answers
 * `!orderbook`, so all of them are charged to the `!orderbook` bucket (docs/limits.md).
 */
export function requestsOrderbook(message: string): boolean {
  // Most pubmsgs are offers: no split for them.
  if (!message.includes('orderbook')) return false;
  return splitCommands(message).some((command) => command.startsWith('orderbook'));
}

/** A nick refused after flooding (see {@link DirectoryLimits.isBanned}). */
interface NickRefusal {
  /** Until when, in ms of the node's clock. */
  readonly until: number;
  /** Whether the flooder had proven the nick's key (nick authentication). */
  readonly proven: boolean;
}

/** The limits of one directory node. */
export class DirectoryLimits {
  readonly policy: DirectoryLimitsPolicy;
  readonly #counters: Counters;
  readonly #now: () => number;
  readonly #logger: Logger;
  readonly #global: TokenBucket;
  /** nick -> its refusal; insertion order = oldest first. */
  readonly #banned = new Map<string, NickRefusal>();

  constructor(
    policy: DirectoryLimitsPolicy,
    counters: Counters,
    logger: Logger,
    now: () => number = Date.now,
  ) {
    this.policy = policy;
    this.#counters = counters;
    this.#logger = logger;
    this.#now = now;
    this.#global = new TokenBucket(policy.globalDeliveries, now);
  }

  /** Fresh buckets for a new connection. */
  newPeer(): PeerBuckets {
    return new PeerBuckets(this.policy, this.#now);
  }

  /** Nicks currently remembered as refused (expired ones included until looked up). */
  get bannedCount(): number {
    return this.#banned.size;
  }

  /**
   * True while a handshake under `nick` is refused after flooding. A refusal earned by a
   * connection that had not proven the nick's key (no nick authentication) does not refuse one
   * that offers to prove it (`provesKey`): otherwise anyone could keep a verified peer out of its
   * nick by taking it unproven (as `prefer_verified` allows while the owner is away) and flooding.
   */
  isBanned(nick: string, provesKey = false): boolean {
    const refusal = this.#banned.get(nick);
    if (refusal === undefined) return false;
    if (refusal.until <= this.#now()) {
      this.#banned.delete(nick);
      return false;
    }
    return refusal.proven || !provesKey;
  }

  /**
   * Charges one received envelope to the connection's message bucket.
   * @returns false when it is over the limit (dropped, counted `dropped.rate-limited`).
   */
  admitMessage(peer: DirectoryPeer): boolean {
    if (peer.buckets.messages.take()) return true;
    this.#overLimit(peer, 'rate-limited');
    return false;
  }

  /**
   * Charges a pubmsg to be relayed to `fanout` peers: `fanout` delivery units per started
   * {@link DELIVERY_UNIT_BYTES} of the frame sent to each (`frameBytes`, the relayed 687 with its
   * CR LF: bytes written, not characters received, docs/protocol.md §1.2) against the connection's
   * and the node's delivery budgets, and an `!orderbook` request (any command of the message, as
   * receivers split it: {@link requestsOrderbook}) against its own bucket. The `!orderbook` token
   * is taken last, so a pubmsg dropped for fan-out does not use it up.
   * @returns false when it must be dropped (counted under its reason).
   */
  admitPubmsg(peer: DirectoryPeer, fanout: number, message: string, frameBytes: number): boolean {
    const buckets = peer.buckets;
    const orderbook = requestsOrderbook(message);
    if (orderbook && buckets.orderbook.available < 1) {
      this.#overLimit(peer, 'orderbook-limited');
      return false;
    }
    const units = fanout * Math.max(1, Math.ceil(frameBytes / DELIVERY_UNIT_BYTES));
    // A cost larger than the burst would never pass: it costs at most the burst.
    if (!buckets.deliveries.take(Math.min(units, this.policy.deliveries.burst))) {
      this.#overLimit(peer, 'fanout-limited');
      return false;
    }
    if (!this.#global.take(Math.min(units, this.policy.globalDeliveries.burst))) {
      // The node as a whole is saturated: dropped, but the sender broke no limit of its own.
      this.#counters.add(dropCounter('node-fanout-limited'));
      return false;
    }
    // At least one token is there (checked above, and a bucket only refills meanwhile).
    if (orderbook) buckets.orderbook.take();
    return true;
  }

  /**
   * Charges a getpeerlist request.
   * @returns false when over the limit (not answered, counted `dropped.getpeerlist-limited`).
   */
  admitGetpeerlist(peer: DirectoryPeer): boolean {
    if (peer.buckets.getpeerlist.take()) return true;
    this.#overLimit(peer, 'getpeerlist-limited');
    return false;
  }

  /**
   * The connection is over its read rate and waits `waitMs` before its next line (nothing is
   * dropped: TCP slows the peer down). Counted `throttled.read-rate`, and charged one offence per
   * {@link READ_WAIT_MS_PER_OFFENCE} ms waited (a fraction for a shorter wait, so many short waits
   * cost what one as long would): a peer that persists is disconnected as a flooder
   * (`disconnected.flooding`) and its nick refused, as for over-limit messages.
   */
  readThrottled(peer: DirectoryPeer, waitMs: number): void {
    this.#counters.add('throttled.read-rate');
    this.#offend(peer, waitMs / READ_WAIT_MS_PER_OFFENCE, 'read-rate');
  }

  /** Empties the ban list (stop). */
  clear(): void {
    this.#banned.clear();
  }

  #overLimit(peer: DirectoryPeer, reason: DropReason): void {
    this.#counters.add(dropCounter(reason));
    this.#offend(peer, 1, reason);
  }

  /**
   * Charges `cost` offences. Tolerated while the bucket holds at least one offence; the charge may
   * then overdraw it, a debt its rate pays back (so one long wait over the read rate never
   * disconnects a peer by itself, whatever `limit_offence_burst` is). With less than one offence
   * left, the peer is disconnected, and its nick refused if the connection is handshaked (it had
   * proven its right to the nick).
   */
  #offend(peer: DirectoryPeer, cost: number, reason: DropReason | 'read-rate'): void {
    const offences = peer.buckets.offences;
    if (offences.available >= 1) {
      offences.spend(cost);
      return;
    }
    if (!peer.conn.isOpen) return;
    // Persistent: disconnect, and refuse the nick for a while, but only a nick this connection
    // had a right to: it is handshaked, which after negotiated nick authentication means it
    // proved the nick's key (directory-admission.ts). A connection still authenticating has only
    // claimed the nick: refusing it would let anyone lock a verified peer out of its nick by
    // claiming it, never answering the challenge and flooding.
    if (peer.nick !== undefined && peer.state === 'handshaked') this.#ban(peer.nick, peer.verified);
    peer.conn.logger.warn({ nick: peer.nick, reason }, 'peer keeps flooding; disconnecting');
    this.#counters.add('disconnected.flooding');
    peer.conn.destroy('flooding');
  }

  #ban(nick: string, proven: boolean): void {
    this.#banned.delete(nick);
    this.#banned.set(nick, { until: this.#now() + this.policy.banMs, proven });
    if (this.#banned.size > MAX_BANNED_NICKS) {
      const oldest = this.#banned.keys().next().value;
      if (oldest !== undefined) this.#banned.delete(oldest);
    }
    this.#logger.info({ nick, banMs: this.policy.banMs }, 'nick refused after flooding');
  }
}
