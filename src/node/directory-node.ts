/**
 * Directory node policy (docs/protocol.md §2.5, §3.3, §3.4, §4.2, §4.4, §10 "Directory role"): accepts
 * handshakes, relays pubmsgs to every other handshaked peer and privmsgs to the owner of the
 * recipient nick, and sends peerlists as the reference does. Every per-message lookup is O(1) in
 * the number of peers (a map from nick to peer); only broadcasts touch every peer, and they encode
 * the frame once.
 */
import type net from 'node:net';
import type { Logger } from '../log.js';
import { formatPubmsgLine } from '../message/privmsg.js';
import { OpenSockets } from '../net/open-sockets.js';
import { flushAllConnections, PeerConnection } from '../peer/connection.js';
import { encodeEnvelope, type ReceivedEnvelope } from '../wire/envelope.js';
import { encodeLine } from '../wire/framing.js';
import { MessageType } from '../wire/message-types.js';
import { encodePeerlistEntry } from '../wire/peerlist.js';
import { Counters } from './counters.js';
import { DirectoryAdmission } from './directory-admission.js';
import { DirectoryRelay } from './directory-relay.js';
import { DepartureAnnouncer } from './directory-departures.js';
import { DEFAULT_DIRECTORY_LIMITS, DirectoryLimits } from './directory-limits.js';
import {
  DEFAULT_HEARTBEAT,
  DEFAULT_MAX_PENDING_HANDSHAKES,
  DIRECTORY_HANDSHAKE_TIMEOUT_MS,
  DIRECTORY_STOP_DEADLINE_MS,
  DirectoryPeer,
  type DirectoryNodeOptions,
  type DirectoryNodeStats,
  type DirectoryPeerInfo,
  type HeartbeatOptions,
  type RelayEvent,
} from './directory-types.js';

export {
  DEFAULT_HEARTBEAT,
  DEFAULT_MAX_PEERS,
  DEFAULT_MAX_PENDING_HANDSHAKES,
  DIRECTORY_HANDSHAKE_TIMEOUT_MS,
  DIRECTORY_STOP_DEADLINE_MS,
  GETPEERLIST_CHUNK_ENTRIES,
  NICK_AUTH_TIMEOUT_MS,
  type DirectoryNodeOptions,
  type DirectoryNodeStats,
  type DirectoryPeerInfo,
  type HeartbeatOptions,
  type NickAuthPolicy,
  type RelayEvent,
} from './directory-types.js';
export { DEFAULT_DIRECTORY_LIMITS, type DirectoryLimitsPolicy } from './directory-limits.js';

/** A JoinMarket directory node. */
export class DirectoryNode {
  readonly #options: DirectoryNodeOptions;
  readonly #logger: Logger;
  readonly #peers = new Set<DirectoryPeer>();
  readonly #byNick = new Map<string, DirectoryPeer>();
  /** The connection of each handshaked peer, by nick: what the relay sends a privmsg to. */
  readonly #relayTargets = new Map<string, PeerConnection>();
  readonly #handshaked = new Set<DirectoryPeer>();
  /** Accepted sockets not yet closed: the peers' and those we closed whose other end stays open. */
  readonly #sockets = new OpenSockets();
  readonly #ownEntry: string;
  readonly counters = new Counters();
  readonly #departures: DepartureAnnouncer;
  readonly #heartbeat: HeartbeatOptions;
  readonly #limits: DirectoryLimits;
  readonly #admission: DirectoryAdmission;
  readonly #relay: DirectoryRelay;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #started = false;

  constructor(options: DirectoryNodeOptions) {
    this.#heartbeat = options.heartbeat ?? DEFAULT_HEARTBEAT;
    this.#options = options;
    this.#logger = options.logger.child({ role: 'directory', nick: options.identity.nick });
    this.#limits = new DirectoryLimits(
      options.limits ?? DEFAULT_DIRECTORY_LIMITS,
      this.counters,
      this.#logger,
      options.now,
    );
    this.#relay = new DirectoryRelay({
      counters: this.counters,
      limits: this.#limits,
      handshaked: this.#handshaked,
      relayTargets: this.#relayTargets,
    });
    this.#admission = new DirectoryAdmission({
      options,
      counters: this.counters,
      limits: this.#limits,
      byNick: this.#byNick,
      handshakedCount: () => this.#handshaked.size,
      register: (peer) => {
        this.#register(peer);
      },
    });
    this.#ownEntry = encodePeerlistEntry({
      nick: options.identity.nick,
      location: options.ownLocation,
      disconnected: false,
    });
    this.#departures = new DepartureAnnouncer(
      this.#ownEntry,
      () => this.#handshaked,
      (count) => {
        this.counters.add('departures.announced', count);
      },
    );
  }

  /** Our nick. */
  get nick(): string {
    return this.#options.identity.nick;
  }

  /** Our location string. */
  get location(): string {
    return this.#options.ownLocation;
  }

  /**
   * Starts accepting peers. Idempotent while running; a start that fails is undone and may be
   * retried.
   * @throws ListenError `ERR_LISTEN` when the listener cannot bind.
   */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    try {
      await this.#options.server.listen((socket) => {
        this.#accept(socket);
      });
    } catch (err) {
      this.#started = false;
      throw err;
    }
    this.#heartbeatTimer = setInterval(() => {
      this.sweep();
    }, this.#heartbeat.sweepIntervalMs);
    this.#heartbeatTimer.unref();
    this.#logger.info(
      { location: this.#options.ownLocation, nickAuth: this.#admission.nickAuthMode },
      'directory node listening',
    );
  }

  /**
   * Subscribes to relayed messages (for the operator's local API). Costs nothing per message while
   * nobody listens. Returns the function that unsubscribes.
   */
  onRelay(listener: (event: RelayEvent) => void): () => void {
    return this.#relay.onRelay(listener);
  }

  /**
   * One heartbeat sweep (docs/protocol.md §4.7, ng heartbeat.py): evicts peers idle past `evictIdleMs` or
   * silent after a probe, and probes peers idle past `probeIdleMs`: 798 to peers that advertised
   * `ping`, a unicast `!orderbook` pubmsg to serving peers without it (a reference maker answers
   * and so shows it is alive), nothing to other takers. Run by a timer; public for tests.
   */
  sweep(): void {
    const now = (this.#options.now ?? Date.now)();
    for (const peer of [...this.#handshaked]) {
      const liveness = peer.conn.liveness(now, this.#heartbeat);
      if (liveness === 'dead') {
        peer.conn.logger.info(
          { nick: peer.nick, idleMs: now - peer.conn.lastReceivedAt },
          'evicting idle peer',
        );
        this.counters.add('evicted.idle');
        peer.conn.destroy('idle');
        continue;
      }
      if (liveness !== 'probe') continue;
      if (peer.features.has('ping')) {
        peer.conn.send(MessageType.PING, '');
        peer.conn.markProbed(now);
        this.counters.add('heartbeat.ping');
      } else if (peer.isServing) {
        peer.conn.send(
          MessageType.PUBMSG,
          formatPubmsgLine(this.#options.identity.nick, '!orderbook'),
        );
        peer.conn.markProbed(now);
        this.counters.add('heartbeat.orderbook-probe');
      }
    }
  }

  /**
   * Stops accepting, stops handling input, and closes every peer connection: what was queued for a
   * peer is flushed, and a peer that has not taken it within `STOP_DRAIN_TIMEOUT_MS` (1 s,
   * src/peer/connection.ts) is cut off. Returns once every connection is gone, or `deadlineMs`
   * passed. Idempotent.
   */
  async stop(deadlineMs = DIRECTORY_STOP_DEADLINE_MS): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    clearInterval(this.#heartbeatTimer);
    this.#departures.clear();
    this.#limits.clear();
    // Stop accepting first (close() refuses new connections at once; its promise settles once the
    // open ones are gone), then close the peers, which drops their unhandled input. No `;D`
    // broadcasts while stopping: N departures told to N peers would queue O(N²) frames.
    const listenerClosed = this.#options.server.close();
    this.#handshaked.clear();
    this.#relay.peersChanged();
    this.#byNick.clear();
    this.#relayTargets.clear();
    for (const peer of [...this.#peers]) peer.conn.close('stopping');
    flushAllConnections();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      listenerClosed,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, deadlineMs);
      }),
    ]);
    clearTimeout(timer);
  }

  /** A snapshot of the connected peers. */
  peers(): DirectoryPeerInfo[] {
    return [...this.#peers].map((peer) => ({
      connectionId: peer.conn.id,
      nick: peer.nick,
      location: peer.location,
      state: peer.state === 'closed' ? 'connected' : peer.state,
      verified: peer.verified,
      features: [...peer.features].sort(),
      remote: peer.conn.remote,
    }));
  }

  /** Number of handshaked peers. */
  get handshakedCount(): number {
    return this.#handshaked.size;
  }

  /** Sizes of everything the node holds per connection or nick (all 0 with no peer). */
  stats(): DirectoryNodeStats {
    return {
      connections: this.#peers.size,
      pendingHandshakes: this.#peers.size - this.#handshaked.size,
      handshaked: this.#handshaked.size,
      nicks: this.#byNick.size,
      relayTargets: this.#relayTargets.size,
      bannedNicks: this.#limits.bannedCount,
    };
  }

  #accept(socket: net.Socket): void {
    const options = this.#options;
    // Sockets we closed count as not handshaked until they are gone: a peer refused at once (a
    // bad 793) that keeps its end open would otherwise hold a socket for free.
    if (
      this.#sockets.size - this.#handshaked.size >=
      (options.maxPendingHandshakes ?? DEFAULT_MAX_PENDING_HANDSHAKES)
    ) {
      // Full of connections that have not handshaked: refused at once, nothing kept.
      this.counters.add('refused.pending-handshakes-full');
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    const conn = new PeerConnection(socket, {
      direction: 'inbound',
      logger: this.#logger,
      ...(options.now !== undefined ? { now: options.now } : {}),
      ...(options.maxQueuedBytes !== undefined ? { maxQueuedBytes: options.maxQueuedBytes } : {}),
      readRate: this.#limits.policy.readBytes,
    });
    const peer = new DirectoryPeer(conn, this.#limits.newPeer());
    this.#peers.add(peer);
    conn.armHandshakeDeadline(
      this.#options.handshakeTimeoutMs ?? DIRECTORY_HANDSHAKE_TIMEOUT_MS,
      () => {
        if (peer.state !== 'connected') return;
        conn.logger.info('no handshake in time; disconnecting');
        this.counters.add('disconnected.handshake-timeout');
        conn.close('handshake-timeout');
      },
    );
    conn.start({
      // Charged per line before decoding: a flooder's dropped lines cost no JSON parsing.
      admitLine: () => this.#limits.admitMessage(peer),
      onThrottled: (waitMs) => {
        this.#limits.readThrottled(peer, waitMs);
      },
      onEnvelope: (envelope, raw) => {
        this.#handleEnvelope(peer, envelope, raw);
      },
      onClose: (err, reason) => {
        if (reason === 'slow-reader') this.counters.add('evicted.slow-reader');
        this.#handleClose(peer, err);
      },
    });
    conn.log('debug', {}, 'peer connected');
  }

  #handleEnvelope(peer: DirectoryPeer, envelope: ReceivedEnvelope, raw: Uint8Array): void {
    switch (envelope.type) {
      case MessageType.HANDSHAKE:
        this.#admission.handleHandshake(peer, envelope.line);
        return;
      case MessageType.PUBMSG:
        this.#relay.handlePubmsg(peer, envelope.line);
        return;
      case MessageType.PRIVMSG:
        this.#relay.handlePrivmsg(peer, envelope.line, envelope.canonical ? raw : undefined);
        return;
      case MessageType.GETPEERLIST:
        this.#relay.handleGetPeerlist(peer);
        return;
      case MessageType.PING:
        // ng: the directory answers a client's 798 with 799 (docs/protocol.md §4.7); only to peers that
        // advertised `ping`, so a reference peer never receives a 799 (docs/protocol.md §1.4).
        if (peer.features.has('ping')) peer.conn.send(MessageType.PONG, '');
        return;
      case MessageType.NICK_AUTH_PROOF:
        this.#admission.handleNickAuthProof(peer, envelope.line);
        return;
      case MessageType.NICK_AUTH_CHALLENGE:
      case MessageType.NICK_AUTH_RESULT:
        this.counters.add('disconnected.unexpected-nick-auth');
        peer.conn.destroy('protocol-violation');
        return;
      case MessageType.DN_HANDSHAKE:
        // A peer claiming to be a directory towards a directory: the reference asserts and drops.
        peer.conn.logger.warn('dn-handshake received by a directory node; disconnecting');
        this.counters.add('disconnected.unexpected-795');
        peer.conn.destroy('protocol-violation');
        return;
      default:
        // 789 from a client, 799, unknown types: ignored, as the reference does (docs/protocol.md §1.4).
        this.counters.add('ignored.type');
        peer.conn.logger.debug({ type: envelope.type }, 'ignoring message type');
    }
  }

  #register(peer: DirectoryPeer): void {
    if (peer.nick === undefined || peer.location === undefined) return;
    peer.state = 'handshaked';
    const entry = encodePeerlistEntry({
      nick: peer.nick,
      location: peer.location,
      disconnected: false,
    });
    const peerlistFrame = (ofPeer: string): Uint8Array =>
      encodeLine(
        encodeEnvelope(
          MessageType.PEERLIST,
          peer.isServing ? `${this.#ownEntry},${ofPeer}` : this.#ownEntry,
        ),
      );
    peer.conn.wantsPeerlistFeatures = peer.features.has('peerlist_features');
    peer.relayPeerlistFrame = peerlistFrame(entry);
    peer.relayPeerlistFrameWithFeatures =
      peer.features.size > 0
        ? peerlistFrame(
            encodePeerlistEntry({
              nick: peer.nick,
              location: peer.location,
              disconnected: false,
              features: [...peer.features],
            }),
          )
        : peer.relayPeerlistFrame;
    this.#byNick.set(peer.nick, peer);
    this.#relayTargets.set(peer.nick, peer.conn);
    this.#handshaked.add(peer);
    this.#relay.peersChanged();
    this.counters.add('handshake.accepted');
    peer.conn.log(
      'info',
      { nick: peer.nick, location: peer.location, verified: peer.verified },
      'peer handshaked',
    );
  }

  #handleClose(peer: DirectoryPeer, err: Error | undefined): void {
    this.#peers.delete(peer);
    const wasHandshaked = peer.state === 'handshaked';
    peer.state = 'closed';
    if (!wasHandshaked || peer.nick === undefined || !this.#started) return;
    this.#handshaked.delete(peer);
    this.#relay.peersChanged();
    if (this.#byNick.get(peer.nick) === peer) this.#byNick.delete(peer.nick);
    if (this.#relayTargets.get(peer.nick) === peer.conn) this.#relayTargets.delete(peer.nick);
    peer.conn.log('info', { nick: peer.nick, reason: err?.message }, 'peer left');
    // Tell everybody else (docs/protocol.md §3.3 case 2): our own entry plus `nick;location;D`;
    // departures in the same event-loop turn go out together (directory-departures.ts).
    this.#departures.add(peer.nick, peer.location);
  }
}
