/**
 * One peer connection and its whole life: it owns a socket, frames lines (docs/protocol.md §1.1),
 * decodes envelopes (§1.2), holds the handshake deadline, tracks liveness for keepalive probing
 * (§4.7), queues what we send with a byte cap (a slow reader is destroyed, nobody else waits), and
 * coalesces everything sent to it in one event-loop turn into one socket write. It knows nothing of
 * handshakes' content or routing: the policy layer (src/node/) decides what a message means.
 *
 * Seams for later work: {@link ConnectionHandlers.onEnvelope} is the single entry of received
 * envelopes (a rate limiter wraps it), {@link PeerConnection.queuedBytes} says how much waits for
 * the peer (fair scheduling, metrics).
 */
import type net from 'node:net';
import { OnionmcError, ProtocolError } from '../errors.js';
import { destroyUnlessClosedWithin } from '../net/cut-off.js';
import type { Logger } from '../log.js';
import { decodeReceivedEnvelope, encodeEnvelope, type ReceivedEnvelope } from '../wire/envelope.js';
import { TokenBucket, type TokenBucketPolicy } from '../util/token-bucket.js';
import { LineDecoder, encodeLine } from '../wire/framing.js';
import { fairReadScheduler, INBOX_PAUSE_BYTES, type FairReadable } from './fair-reader.js';
import { frameArena } from './frame-arena.js';

/**
 * Bytes we let queue up for one peer before we treat it as a slow consumer and disconnect it:
 * 1 MiB, about 26 maximum-size lines (40,000 bytes each, docs/protocol.md §1.3) or a full
 * getpeerlist answer for 10,000 peers; 50 peers that never read then hold at most 50 MiB.
 */
export const MAX_QUEUED_BYTES_PER_PEER = 1024 * 1024;

/**
 * Bytes queued in one event-loop turn after which they are written at once instead of at the end
 * of the turn: a turn that relays megabytes (long pubmsgs to many peers) must not count against a
 * reading peer's {@link MAX_QUEUED_BYTES_PER_PEER} as if that peer were not reading.
 */
export const FLUSH_EARLY_BYTES = 256 * 1024;

/** How long {@link PeerConnection.close} waits for the peer to take our last bytes and FIN. */
export const CLOSE_DRAIN_TIMEOUT_MS = 10_000;

/**
 * How long {@link PeerConnection.close} waits instead when the reason is `stopping` (the process
 * is shutting down, docs/operating.md "Stopping"): what was queued is handed to the socket at
 * once, a peer that has not taken it (and FIN-ed back) within 1 s is cut off, so a stop under
 * load ends within a bounded time whatever the peers do.
 */
export const STOP_DRAIN_TIMEOUT_MS = 1_000;

/** Which side opened the connection. */
export type Direction = 'inbound' | 'outbound';

/**
 * Why a connection ended, as given to {@link ConnectionHandlers.onClose}; one word each, usable
 * as a counter name.
 */
export type CloseReason =
  | 'closed' // we closed it cleanly (close())
  | 'remote-closed' // the peer ended or reset it
  | 'socket-error'
  | 'protocol-violation'
  | 'handler-failed'
  | 'slow-reader'
  | 'flooding' // over its rate limits persistently (src/node/directory-limits.ts)
  | 'handshake-timeout'
  | 'probe-timeout'
  | 'idle'
  | 'rejected'
  | 'replaced'
  | 'stopping';

/** What the owner of a connection is told. */
export interface ConnectionHandlers {
  /**
   * One decoded envelope, in arrival order, with the received bytes of its line (without the
   * delimiter; valid only during the call) and whether they are canonical (relayable as they
   * are). Exceptions thrown here close the connection.
   */
  onEnvelope(envelope: ReceivedEnvelope, raw: Uint8Array): void;
  /**
   * Called for each received line before it is decoded: false drops the line undecoded (a rate
   * limit; src/node/directory-limits.ts), so a peer over its limit costs us no JSON parsing. The
   * hook may destroy the connection. Absent: every line is decoded.
   */
  admitLine?(): boolean;
  /**
   * The connection went over its {@link ConnectionOptions.readRate} and its next line waits
   * `waitMs` before the rate is looked at again (at most {@link MAX_THROTTLE_WAIT_MS}; a longer
   * debt is told again in parts, so the calls add up to the time waited). Absent: not told.
   */
  onThrottled?(waitMs: number): void;
  /**
   * The connection closed. `reason` says why; `err` is the underlying error when there was one.
   * Called once.
   */
  onClose(err: Error | undefined, reason: CloseReason): void;
}

/** Options of a {@link PeerConnection}. */
export interface ConnectionOptions {
  readonly direction: Direction;
  readonly logger: Logger;
  /** See {@link MAX_QUEUED_BYTES_PER_PEER}. */
  readonly maxQueuedBytes?: number;
  /** Receive limit per line in bytes; default the framing layer's 65,536 (docs/protocol.md §1.3). */
  readonly maxLineBytes?: number;
  /**
   * Bytes of received lines handled per second, and the burst, in bytes (each line is charged its
   * length once handled). A peer that sends faster is read slower: its lines wait, its socket is
   * paused, TCP pushes back on it; nothing is dropped. Absent: not limited. Measured on the real
   * clock (`performance.now`), whatever {@link now} is.
   */
  readonly readRate?: TokenBucketPolicy;
  /** Clock in ms, injectable for tests; default `Date.now`. */
  readonly now?: () => number;
}

/** Liveness policy of {@link PeerConnection.liveness}, all in ms of the injected clock. */
export interface LivenessPolicy {
  /** Idle this long: probe (798, or what the owner uses). */
  readonly probeIdleMs: number;
  /** A probe unanswered this long: dead. */
  readonly pongTimeoutMs: number;
  /** Idle this long: dead, probe or not (`Infinity`: never). */
  readonly evictIdleMs: number;
}

/** What {@link PeerConnection.liveness} advises. */
export type Liveness = 'alive' | 'probe' | 'waiting' | 'dead';

/** What the {@link FlushScheduler} writes: a {@link PeerConnection}. */
export interface Flushable {
  /** Bytes queued and not yet written. */
  readonly pendingBytes: number;
  /**
   * Writes what is queued.
   * @param socket the connection's own socket, when the caller holds it (see
   *   {@link FlushScheduler.add}); otherwise the connection finds it itself.
   */
  flush(socket?: net.Socket): void;
}

/**
 * Flushes the output of every connection that was sent something in this event-loop turn: one
 * `setImmediate` for all connections, so N peers written in a turn cost one timer, not N. A
 * connection is listed when its first frame of the turn is queued; one flushed early (close(),
 * flush()) or destroyed stays listed and is skipped (its queue is empty), which costs less per
 * frame than keeping a Set exact.
 *
 * Two classes, so that nobody's reply waits behind a broadcast: a connection with a frame meant
 * for it alone (a relayed privmsg, an answer) is *urgent* and written first, every iteration in
 * full; one that was only sent copies of broadcasts (pubmsg fan-out, departures: one write per
 * recipient, thousands per pubmsg) is written in {@link BROADCAST_SLICE_MS} slices per iteration,
 * in the order they were queued, the rest left for the next iteration (where further broadcasts
 * join the same write). A broadcast thus never stalls the event loop, and a flood of pubmsgs
 * costs the well-behaved peers' privmsgs nothing but their own write.
 */
export class FlushScheduler {
  readonly #now: () => number;
  #urgent: Flushable[] = [];
  /** The socket of each {@link #urgent} entry, at the same index (undefined: not given). */
  #urgentSockets: (net.Socket | undefined)[] = [];
  #broadcast: Flushable[] = [];
  /** Index of the first {@link #broadcast} entry not yet flushed. */
  #broadcastAt = 0;
  #scheduled: NodeJS.Immediate | undefined;

  /** @param now clock in ms for the time slices (default `performance.now`), injectable for tests. */
  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /**
   * Lists `conn`, whose first frame of the turn was just queued.
   * @param socket `conn`'s socket, kept beside it for an urgent write and handed to its
   *   {@link Flushable.flush}: the flush then reads the connection and its socket at once instead
   *   of one after the other. At 10,000 peers both are cold in the cache when written, so that is
   *   one memory wait less per relayed privmsg (docs/performance.md "Where the time goes").
   */
  add(conn: Flushable, urgent: boolean, socket?: net.Socket): void {
    if (urgent) {
      this.#urgent.push(conn);
      this.#urgentSockets.push(socket);
    } else this.#broadcast.push(conn);
    this.#schedule();
  }

  /** Lists `conn` as urgent too: it already waits with broadcasts and was just sent its own frame. */
  promote(conn: Flushable, socket?: net.Socket): void {
    this.#urgent.push(conn);
    this.#urgentSockets.push(socket);
    this.#schedule();
  }

  /**
   * Writes the listed connections' frames: every urgent one, those with little to write (a
   * privmsg, a handshake answer) before the big ones, then broadcasts. With `sliced`, the big
   * urgent writes stop after {@link FLUSH_SLICE_MS} and the broadcasts after
   * {@link BROADCAST_SLICE_MS}, the rest left to the next event-loop iteration (reading in
   * between), so that an iteration stays short whatever was queued. Without, everything is
   * written now.
   */
  flushAll(sliced = false): void {
    this.flushUrgent(sliced);
    const list = this.#broadcast;
    if (list.length === this.#broadcastAt) return;
    const started = sliced ? this.#now() : 0;
    let i = this.#broadcastAt;
    // The clock is read after every write: a write of long lines to a loopback or Tor socket
    // costs up to a millisecond (the kernel copies and processes it in the call), a clock read
    // some 50 ns.
    while (i < list.length) {
      (list[i++] as Flushable).flush();
      if (sliced && this.#now() - started >= BROADCAST_SLICE_MS) break;
    }
    if (i < list.length) {
      // Drop the written head now and then, so a list that never empties does not grow.
      if (i >= 4096) {
        this.#broadcast = list.slice(i);
        this.#broadcastAt = 0;
      } else this.#broadcastAt = i;
      this.#schedule();
    } else {
      this.#broadcast = [];
      this.#broadcastAt = 0;
    }
  }

  /** Writes the urgent connections' frames (see {@link flushAll}). */
  flushUrgent(sliced = false): void {
    const urgent = this.#urgent;
    if (urgent.length === 0) return;
    const sockets = this.#urgentSockets;
    this.#urgent = [];
    this.#urgentSockets = [];
    let big: Flushable[] | undefined;
    for (let i = 0; i < urgent.length; i++) {
      const conn = urgent[i] as Flushable;
      if (conn.pendingBytes <= SMALL_FLUSH_BYTES) conn.flush(sockets[i]);
      else (big ??= []).push(conn);
    }
    if (big === undefined) return;
    const started = sliced ? this.#now() : 0;
    for (let i = 0; i < big.length; i++) {
      (big[i] as Flushable).flush();
      if (sliced && this.#now() - started >= FLUSH_SLICE_MS && i + 1 < big.length) {
        for (let j = i + 1; j < big.length; j++) this.promote(big[j] as Flushable);
        return;
      }
    }
  }

  #schedule(): void {
    if (this.#scheduled !== undefined) return;
    this.#scheduled = setImmediate(() => {
      this.#scheduled = undefined;
      this.flushAll(true);
    });
  }
}

/** Bytes a connection has to write at most to count as small in {@link FlushScheduler.flushAll}. */
export const SMALL_FLUSH_BYTES = 4 * 1024;

/**
 * Bytes of a turn's frames that {@link PeerConnection.flush} copies into one Buffer for its write;
 * a bigger turn (or any turn of a peer that is behind) is written as the frames themselves, corked
 * (one vectored write). Copies up to this size come from Node's shared Buffer pool
 * (`Buffer.allocUnsafe` pools under half of its 8 KiB), so they cost no memory of their own;
 * bigger ones would each be a new allocation.
 */
export const CONCAT_MAX_BYTES = 4 * 1024;

/**
 * Longest wait, in ms, of a connection over its read rate before the rate is looked at again (a
 * bucket with a very low rate could otherwise owe minutes).
 */
export const MAX_THROTTLE_WAIT_MS = 1_000;

/** Time in ms the writes of big turns may take in one event-loop iteration (see flushAll). */
export const FLUSH_SLICE_MS = 1;

/**
 * Time in ms that writing broadcasts (connections sent nothing but broadcast copies) may take in
 * one event-loop iteration (see FlushScheduler). On an otherwise idle node iterations follow each
 * other at once, so this bounds the latency broadcasts add to everything else, not their rate.
 */
export const BROADCAST_SLICE_MS = 2;

const scheduler = new FlushScheduler();
/** The real clock in ms, one function for every connection's read rate. */
const realClock = (): number => performance.now();
// Privmsgs relayed by a round of the fair reader go out at once, not an iteration later.
fairReadScheduler.afterRound = () => {
  scheduler.flushUrgent(true);
};
let nextConnectionId = 1;

/** A framed, envelope-level connection to one peer. */
export class PeerConnection implements FairReadable, Flushable {
  // The fields that queueing and writing a frame touch come first, so that they lie in the
  // object's first cache lines: at 10,000 peers each relayed privmsg reaches a connection whose
  // memory is cold, twice (queued, then written at the end of the turn), and each further line
  // touched is another cache miss (docs/performance.md "Where the time goes").
  #closed = false;
  /**
   * Set by a directory node for a peer that asked for `peerlist_features` in its handshake: the
   * peerlist entry sent with each privmsg relayed to it then carries the sender's features
   * (docs/protocol.md §3.3, §3.4). Kept here, not in the directory's record of the peer, because
   * relaying a privmsg reads it, and the recipient's connection is the one object of it that the
   * relay has to touch (src/node/directory-relay.ts).
   */
  wantsPeerlistFeatures = false;
  /**
   * The first frame sent in this turn, and the others after it: written together by
   * {@link flush}. Most turns send a peer one frame, which then costs no array.
   */
  #pending: Uint8Array | undefined;
  #pendingMore: Uint8Array[] | undefined;
  /** Whether this turn's frames hold one that is not a broadcast copy (see FlushScheduler). */
  #urgent = false;
  #pendingBytes = 0;
  /**
   * Bytes that may still be queued this turn before the peer counts as a slow reader: the cap
   * minus the socket's write buffer (as of {@link #socketBacklog}) minus this turn's frames.
   */
  #budget = 0;
  /**
   * The socket's write buffer (`writableLength`) when we last looked, after our last write: an
   * upper bound of what it holds now, since only {@link flush} writes to it and the buffer only
   * drains in between. A turn's first frame is checked against this instead of the socket, which
   * is read again only when the bound leaves too little room, so queueing a frame touches no
   * socket state.
   */
  #socketBacklog: number;
  readonly #maxQueuedBytes: number;
  readonly #socket: net.Socket;
  /** Process-unique id, for logs and maps. */
  readonly id: number;
  readonly direction: Direction;
  /** `ip:port` (or `unix`) of the other end, as the socket reports it; for logs. */
  readonly remote: string;
  /** When complete lines were last taken from this connection (arrived and handled), in ms of the injected clock. */
  lastReceivedAt: number;

  readonly #parentLogger: Logger;
  #logger: Logger | undefined;
  readonly #decoder: LineDecoder;
  readonly #now: () => number;
  #handlers: ConnectionHandlers | undefined;
  #handshakeTimer: NodeJS.Timeout | undefined;
  /** When a liveness probe went out (0: none outstanding). */
  #probedAt = 0;
  /**
   * True while lines wait: for a turn of the fair read scheduler (fair-reader.ts), or for the
   * read rate ({@link #throttleTimer}).
   */
  #waiting = false;
  readonly #readBucket: TokenBucket | undefined;
  /** Set while the connection is over its read rate: its lines wait until this fires. */
  #throttleTimer: NodeJS.Timeout | undefined;

  constructor(socket: net.Socket, options: ConnectionOptions) {
    this.id = nextConnectionId++;
    this.direction = options.direction;
    this.#socket = socket;
    this.#socketBacklog = socket.writableLength;
    this.#now = options.now ?? Date.now;
    this.lastReceivedAt = this.#now();
    this.#decoder = new LineDecoder(options.maxLineBytes);
    this.#maxQueuedBytes = options.maxQueuedBytes ?? MAX_QUEUED_BYTES_PER_PEER;
    // On the real clock, not the injected one: the rate paces real reads, with a real timer.
    this.#readBucket =
      options.readRate !== undefined ? new TokenBucket(options.readRate, realClock) : undefined;
    this.remote =
      socket.remoteAddress !== undefined
        ? `${socket.remoteAddress}:${socket.remotePort ?? 0}`
        : 'unix';
    this.#parentLogger = options.logger;
    socket.setNoDelay(true);
  }

  /**
   * This connection's logger (bindings `conn`, `dir`, `remote`). Made on first use: most
   * connections never log, and a child logger per accepted socket was a measurable part of the
   * cost of a reconnect storm.
   */
  get logger(): Logger {
    this.#logger ??= this.#parentLogger.child({
      conn: this.id,
      dir: this.direction,
      remote: this.remote,
    });
    return this.#logger;
  }

  /**
   * Logs through {@link logger} only when `level` is enabled: the per-connection logger is not
   * made for lines that would be dropped (a handshake and a departure per connection, at the
   * default level of a busy node).
   */
  log(level: 'debug' | 'info', bindings: object, message: string): void {
    if (this.#parentLogger.isLevelEnabled(level)) this.logger[level](bindings, message);
  }

  /** True until the connection closed or was destroyed. */
  get isOpen(): boolean {
    return !this.#closed;
  }

  /** Bytes of this turn's frames not yet written to the socket. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Bytes waiting for the peer: this turn's unflushed frames plus the socket's write buffer. */
  get queuedBytes(): number {
    return this.#pendingBytes + this.#socket.writableLength;
  }

  /** Starts reading. Call once, after the owner is ready to receive envelopes. */
  start(handlers: ConnectionHandlers): void {
    this.#handlers = handlers;
    const socket = this.#socket;
    socket.on('data', (chunk: Buffer) => {
      this.#onData(chunk);
    });
    socket.on('error', (err) => {
      this.destroy('socket-error', err);
    });
    socket.on('end', () => {
      // The peer will send nothing more; we have nothing to finish for it either.
      this.destroy('remote-closed');
    });
    socket.on('close', () => {
      this.destroy('remote-closed');
    });
  }

  /**
   * Arms the handshake deadline: unless {@link handshakeDone} is called within `timeoutMs`,
   * `onExpire` runs (default: destroy with `handshake-timeout`). Re-arming replaces the previous
   * deadline. The timer is cleared when the connection ends.
   */
  armHandshakeDeadline(timeoutMs: number, onExpire?: () => void): void {
    clearTimeout(this.#handshakeTimer);
    if (this.#closed) return;
    this.#handshakeTimer = setTimeout(() => {
      this.#handshakeTimer = undefined;
      if (this.#closed) return;
      if (onExpire !== undefined) onExpire();
      else this.destroy('handshake-timeout');
    }, timeoutMs);
  }

  /** Clears the handshake deadline. */
  handshakeDone(): void {
    clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = undefined;
  }

  /**
   * Keepalive bookkeeping (docs/protocol.md §4.7): what to do with this connection now. `probe`:
   * idle past `probeIdleMs` with no probe outstanding (the caller sends one and calls
   * {@link markProbed}); `waiting`: a probe is outstanding; `dead`: idle past `evictIdleMs`, or a
   * probe unanswered for `pongTimeoutMs`. Anything received after a probe answers it.
   */
  liveness(now: number, policy: LivenessPolicy): Liveness {
    if (this.#probedAt > 0 && this.lastReceivedAt >= this.#probedAt) this.#probedAt = 0;
    const idle = now - this.lastReceivedAt;
    if (idle >= policy.evictIdleMs) return 'dead';
    if (this.#probedAt > 0)
      return now - this.#probedAt >= policy.pongTimeoutMs ? 'dead' : 'waiting';
    return idle >= policy.probeIdleMs ? 'probe' : 'alive';
  }

  /** Records that a liveness probe went out at `now` (see {@link liveness}). */
  markProbed(now: number): void {
    this.#probedAt = now;
  }

  /** Forgets an outstanding probe (e.g. after a fresh handshake). */
  resetProbe(): void {
    this.#probedAt = 0;
  }

  /**
   * Bytes received and not yet handled: lines waiting for their turn and an unterminated tail.
   * Bounded: the socket is paused while more than {@link INBOX_PAUSE_BYTES} wait.
   */
  get inboxBytes(): number {
    return this.#decoder.bufferedBytes;
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    try {
      this.#decoder.append(chunk);
    } catch (err) {
      this.#protocolViolation(err);
      return;
    }
    // Lines are taken from the chunks one at a time, as they are handled: a connection handles at
    // most its share now, the rest waits (undecoded) for the scheduler's rounds.
    // Unless this iteration's time for that is used up (fair-reader.ts).
    if (
      !this.#waiting &&
      (!fairReadScheduler.mayHandleNow() ||
        this.drainSome(fairReadScheduler.linesPerTurn, fairReadScheduler.inlineTimeUp))
    ) {
      this.#waiting = true;
      fairReadScheduler.add(this);
    }
    if (this.#waiting && this.inboxBytes > INBOX_PAUSE_BYTES && !this.#socket.isPaused()) {
      this.#socket.pause();
    }
  }

  /**
   * Handles up to `max` waiting lines (called by the fair read scheduler, src/peer/fair-reader.ts;
   * not for owners). A line the owner's {@link ConnectionHandlers.admitLine} refuses is skipped
   * undecoded. Stops early, after a line, once `timeUp` says the caller's time slice is spent, or
   * once the line spent more than the read rate allows: then the connection queues itself again
   * when the rate has paid for it. Resumes reading once few bytes wait.
   * @returns true when lines may still be waiting (the caller queues it for another round).
   */
  drainSome(max: number, timeUp?: () => boolean): boolean {
    let handled = 0;
    let outOfTime = false;
    const bucket = this.#readBucket;
    // Ms until the read rate has paid for the lines handled so far (0: nothing owed).
    let owedMs = bucket?.spend(0) ?? 0;
    while (handled < max && !this.#closed) {
      if (owedMs > 0) {
        this.#throttle(owedMs);
        break;
      }
      let bytes: Uint8Array | undefined;
      let envelope: ReceivedEnvelope;
      try {
        bytes = this.#decoder.nextLine();
        if (bytes === undefined) break;
        handled++;
        if (bucket !== undefined) owedMs = bucket.spend(bytes.length);
        const handlers = this.#handlers;
        if (handlers?.admitLine !== undefined && !handlers.admitLine()) continue;
        envelope = decodeReceivedEnvelope(bytes, this.#decoder);
      } catch (err) {
        this.#protocolViolation(err);
        break;
      }
      try {
        this.#handlers?.onEnvelope(envelope, bytes);
      } catch (err) {
        this.logger.error({ err }, 'handler failed; closing the connection');
        this.destroy('handler-failed', err instanceof Error ? err : new Error(String(err)));
        break;
      }
      if (timeUp?.() === true) {
        outOfTime = true;
        break;
      }
    }
    if (this.#closed) {
      this.#waiting = false;
      return false;
    }
    // Liveness from the lines the decoder found, not a second scan of every chunk.
    if (handled > 0) this.lastReceivedAt = this.#now();
    // Fewer than `max` handled, in time: the decoder ran out of complete lines. Then what it holds
    // is at most the start of one line, which only more reading can complete.
    const throttled = this.#throttleTimer !== undefined;
    this.#waiting = throttled || handled === max || outOfTime;
    if (this.#socket.isPaused() && (!this.#waiting || this.inboxBytes <= INBOX_PAUSE_BYTES)) {
      this.#socket.resume();
    }
    // A throttled connection is queued by its timer, not by the caller.
    return this.#waiting && !throttled;
  }

  /**
   * Over the read rate: the next line waits `waitMs` (at most {@link MAX_THROTTLE_WAIT_MS}, after
   * which the rate is looked at again), then the connection queues itself for a round.
   */
  #throttle(waitMs: number): void {
    clearTimeout(this.#throttleTimer);
    const delayMs = Math.min(Math.ceil(waitMs), MAX_THROTTLE_WAIT_MS);
    this.#throttleTimer = setTimeout(() => {
      this.#throttleTimer = undefined;
      if (!this.#closed) fairReadScheduler.add(this);
    }, delayMs);
    this.#handlers?.onThrottled?.(delayMs);
  }

  #protocolViolation(err: unknown): void {
    const error = err instanceof Error ? err : new ProtocolError(String(err));
    this.logger.warn(
      { code: (error as Partial<OnionmcError>).code, reason: error.message },
      'protocol violation; disconnecting peer',
    );
    this.destroy('protocol-violation', error);
  }

  /**
   * Sends one envelope.
   * @returns false when the connection is already closed (nothing was sent).
   * @throws ProtocolError (`ERR_LINE_TOO_LONG`) when the line exceeds 40,000 bytes
   *   (docs/protocol.md §1.3), or for a type that must never be sent (§10); nothing is sent then.
   */
  send(type: number, line: string): boolean {
    return this.sendEncoded(encodeLine(encodeEnvelope(type, line)));
  }

  /**
   * Queues an already framed line (an envelope plus CRLF), e.g. one encoded once for a broadcast:
   * the same buffer may be queued to many connections. Everything queued in one event-loop turn
   * goes out in one socket write at the end of the turn (or at {@link flush}). Destroys the
   * connection (`slow-reader`) when more than `maxQueuedBytes` would wait for the peer. A frame
   * taken from the {@link frameArena} is queued to ONE connection only, which gives it back once
   * written or dropped (src/peer/frame-arena.ts).
   * @param broadcast true for a copy of a frame sent to many peers (a pubmsg, departures): such
   *   writes may wait behind this turn's other writes, a few ms at most (see FlushScheduler).
   * @returns false when the connection is closed (or was just destroyed as a slow reader).
   */
  sendEncoded(frame: Uint8Array, broadcast = false): boolean {
    if (this.#closed) {
      frameArena.release(frame, false);
      return false;
    }
    const bytes = frame.length;
    let budget = this.#budget;
    const first = this.#pending === undefined;
    if (first || bytes > budget) {
      // The turn's first frame, or over the budget: against the bound first, then, when that
      // leaves too little room, against what the socket holds now (it may have drained since).
      budget = this.#maxQueuedBytes - this.#socketBacklog - this.#pendingBytes;
      if (bytes > budget && this.#socketBacklog > 0) {
        this.#socketBacklog = this.#socket.writableLength;
        budget = this.#maxQueuedBytes - this.#socketBacklog - this.#pendingBytes;
      }
      if (bytes > budget) {
        this.logger.warn(
          { queuedBytes: this.queuedBytes, frameBytes: bytes },
          'peer is not reading; disconnecting',
        );
        this.destroy(
          'slow-reader',
          new OnionmcError('ERR_SLOW_READER', 'peer is not reading (send queue full)'),
        );
        frameArena.release(frame, false);
        return false;
      }
    }
    this.#budget = budget - bytes;
    if (first) {
      this.#urgent = !broadcast;
      scheduler.add(this, !broadcast, this.#socket);
      this.#pending = frame;
    } else {
      if (!broadcast && !this.#urgent) {
        this.#urgent = true;
        scheduler.promote(this, this.#socket);
      }
      (this.#pendingMore ??= []).push(frame);
    }
    this.#pendingBytes += bytes;
    // A big turn goes out as it grows: what counts against the cap is then what the peer has not
    // taken, never what one turn relays to a peer that reads.
    if (this.#pendingBytes >= FLUSH_EARLY_BYTES) this.flush();
    return true;
  }

  /**
   * Writes what was queued in this turn now, in one socket write. Called at the end of a turn.
   * @param given this connection's socket, as the {@link FlushScheduler} passes it (see
   *   {@link FlushScheduler.add}).
   * @throws TypeError when `given` is another socket (a programming error); nothing is written.
   */
  flush(given?: net.Socket): void {
    const socket = given ?? this.#socket;
    if (socket !== this.#socket) throw new TypeError("flush: not this connection's socket");
    const first = this.#pending;
    if (first === undefined) return;
    const more = this.#pendingMore;
    const bytes = this.#pendingBytes;
    this.#pending = undefined;
    this.#pendingMore = undefined;
    this.#pendingBytes = 0;
    if (this.#closed && socket.writableEnded) {
      releaseFrames(first, more, false);
      return;
    }
    if (more === undefined) {
      socket.write(first);
      this.#socketBacklog = socket.writableLength;
      // Still counted by the socket: the kernel did not take it all, Node keeps the frame.
      frameArena.release(first, this.#socketBacklog > 0);
      return;
    }
    if (bytes <= CONCAT_MAX_BYTES && socket.writableLength === 0) {
      socket.write(Buffer.concat([first, ...more], bytes));
      this.#socketBacklog = socket.writableLength;
      releaseFrames(first, more, false);
      return;
    }
    // The frames themselves, in one vectored write, for a peer that is behind (they wait in the
    // socket's buffer until it drains) and for a big turn (broadcasts of long lines that waited for
    // their slice, often several per peer): a broadcast's frame stays one Buffer for every peer,
    // where a copy per peer would be a new Buffer per recipient, which V8 counts towards its next
    // full collection (a paced 40 kB pubmsg flood to 356 peers copied 40-90 MB/s and ran a 2-9 ms
    // mark-compact every second).
    socket.cork();
    socket.write(first);
    for (const frame of more) socket.write(frame);
    socket.uncork();
    this.#socketBacklog = socket.writableLength;
    releaseFrames(first, more, this.#socketBacklog > 0);
  }

  /**
   * Ends the connection after what was queued is flushed; a peer that does not take it within
   * {@link CLOSE_DRAIN_TIMEOUT_MS} ({@link STOP_DRAIN_TIMEOUT_MS} for `stopping`) is cut off.
   * Nothing received after this is handled (the inbox is dropped; later bytes are discarded
   * unparsed). Idempotent; `onClose` is called now.
   */
  close(reason: CloseReason = 'closed'): void {
    if (this.#closed) return;
    this.flush();
    this.#socket.end();
    this.#finish(reason, undefined);
    const drainMs = reason === 'stopping' ? STOP_DRAIN_TIMEOUT_MS : CLOSE_DRAIN_TIMEOUT_MS;
    destroyUnlessClosedWithin(this.#socket, drainMs);
  }

  /** Aborts the connection now, dropping anything queued. Idempotent; `onClose` is called once. */
  destroy(reason: CloseReason = 'closed', err?: Error): void {
    if (!this.#closed) {
      if (this.#pending !== undefined) releaseFrames(this.#pending, this.#pendingMore, false);
      this.#pending = undefined;
      this.#pendingMore = undefined;
      this.#pendingBytes = 0;
      this.#finish(reason, err);
    }
    this.#socket.destroy();
  }

  #finish(reason: CloseReason, err: Error | undefined): void {
    this.#closed = true;
    this.#waiting = false;
    fairReadScheduler.delete(this);
    clearTimeout(this.#throttleTimer);
    this.#throttleTimer = undefined;
    clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = undefined;
    const handlers = this.#handlers;
    this.#handlers = undefined;
    handlers?.onClose(err, reason);
  }
}

/**
 * Gives the frames of a turn back to the {@link frameArena} (those from it): written (`retained`:
 * still held by the socket) or dropped.
 */
function releaseFrames(first: Uint8Array, more: Uint8Array[] | undefined, retained: boolean): void {
  frameArena.release(first, retained);
  if (more !== undefined) for (const frame of more) frameArena.release(frame, retained);
}

/** Flushes every connection's output now (for shutdown paths and tests). */
export function flushAllConnections(): void {
  scheduler.flushAll();
}
