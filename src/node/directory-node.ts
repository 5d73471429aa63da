/**
 * Directory node policy (spec §2.5, §3.3, §3.4, §4.2, §4.4, §10 "Directory role"): accepts
 * handshakes, relays pubmsgs to every other handshaked peer and privmsgs to the owner of the
 * recipient nick, and sends peerlists as the reference does. Every per-message lookup is O(1) in
 * the number of peers (a map from nick to peer); only broadcasts touch every peer, and they encode
 * the frame once.
 */
import type net from 'node:net';
import { hasCode } from '../errors.js';
import type { Logger } from '../log.js';
import { PUBLIC_NICK, parseChannelLine, formatPubmsgLine } from '../message/privmsg.js';
import {
  buildNickAuthChallengeLine,
  buildNickAuthResultLine,
  createNickAuthChallenge,
  parseNickAuthProofLine,
  verifyNickAuth,
  type NickAuthResultCode,
} from '../message/nick-auth.js';
import { flushAllConnections, PeerConnection } from '../peer/connection.js';
import { encodeEnvelope, type Envelope } from '../wire/envelope.js';
import { encodeLine, encodeLineWithin, MAX_RECEIVE_LINE_BYTES } from '../wire/framing.js';
import {
  encodeDirectoryHandshake,
  evaluateClientHandshake,
  featuresOf,
  isValidNick,
  JM_APP_NAME,
  JM_PROTOCOL_VERSION,
  parseClientHandshake,
} from '../wire/handshake.js';
import { parseLocation } from '../wire/location.js';
import { MessageType } from '../wire/message-types.js';
import { encodePeerlist, encodePeerlistEntry, type PeerlistEntry } from '../wire/peerlist.js';
import { Counters, dropCounter } from './counters.js';
import { DepartureAnnouncer } from './directory-departures.js';
import {
  DEFAULT_HEARTBEAT,
  DIRECTORY_HANDSHAKE_TIMEOUT_MS,
  DIRECTORY_STOP_DEADLINE_MS,
  DirectoryPeer,
  GETPEERLIST_CHUNK_ENTRIES,
  NICK_AUTH_TIMEOUT_MS,
  type DirectoryNodeOptions,
  type DirectoryPeerInfo,
  type HeartbeatOptions,
  type NickAuthPolicy,
  type RelayEvent,
} from './directory-types.js';

export {
  DEFAULT_HEARTBEAT,
  DIRECTORY_HANDSHAKE_TIMEOUT_MS,
  DIRECTORY_STOP_DEADLINE_MS,
  GETPEERLIST_CHUNK_ENTRIES,
  NICK_AUTH_TIMEOUT_MS,
  type DirectoryNodeOptions,
  type DirectoryPeerInfo,
  type HeartbeatOptions,
  type NickAuthPolicy,
  type RelayEvent,
} from './directory-types.js';

/** A JoinMarket directory node. */
export class DirectoryNode {
  readonly #options: DirectoryNodeOptions;
  readonly #logger: Logger;
  readonly #peers = new Set<DirectoryPeer>();
  readonly #byNick = new Map<string, DirectoryPeer>();
  readonly #handshaked = new Set<DirectoryPeer>();
  readonly #ownEntry: string;
  readonly counters = new Counters();
  readonly #relayListeners = new Set<(event: RelayEvent) => void>();
  readonly #departures: DepartureAnnouncer;
  readonly #heartbeat: HeartbeatOptions;
  /** The `features` of our 795: see the constructor. */
  readonly #handshakeFeatures: Record<string, boolean>;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #started = false;

  constructor(options: DirectoryNodeOptions) {
    this.#heartbeat = options.heartbeat ?? DEFAULT_HEARTBEAT;
    this.#options = options;
    // We challenge exactly when our mode is not `disabled`, and a client expects an 803 exactly
    // when our 795 advertised `nick_auth` (spec §9.6, §10): so `nick_auth` is advertised by the
    // mode, whatever the configured features say.
    const features: Record<string, boolean> = { ...options.features };
    delete features['nick_auth'];
    if ((options.nickAuth?.mode ?? 'disabled') !== 'disabled') features['nick_auth'] = true;
    this.#handshakeFeatures = features;
    this.#logger = options.logger.child({ role: 'directory', nick: options.identity.nick });
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
      { location: this.#options.ownLocation, nickAuth: this.#nickAuthMode },
      'directory node listening',
    );
  }

  get #nickAuthMode(): NickAuthPolicy['mode'] {
    return this.#options.nickAuth?.mode ?? 'disabled';
  }

  /**
   * Subscribes to relayed messages (for the operator's local API). Costs nothing per message while
   * nobody listens. Returns the function that unsubscribes.
   */
  onRelay(listener: (event: RelayEvent) => void): () => void {
    this.#relayListeners.add(listener);
    return () => this.#relayListeners.delete(listener);
  }

  #emitRelay(
    kind: RelayEvent['kind'],
    from: string,
    to: string,
    message: string,
    line: string,
  ): void {
    if (this.#relayListeners.size === 0) return;
    const space = message.indexOf(' ');
    const event: RelayEvent = {
      kind,
      from,
      to,
      cmd: message.slice(1, space < 0 ? undefined : space),
      line,
    };
    for (const listener of this.#relayListeners) listener(event);
  }

  /**
   * One heartbeat sweep (spec §4.7, ng heartbeat.py): evicts peers idle past `evictIdleMs` or
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
   * Stops accepting and closes every peer connection; returns once the listener closed or
   * `deadlineMs` passed. Idempotent.
   */
  async stop(deadlineMs = DIRECTORY_STOP_DEADLINE_MS): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    clearInterval(this.#heartbeatTimer);
    this.#departures.clear();
    // Close the peers first: a listening server's close() waits for its connections to end. No
    // `;D` broadcasts while stopping: N departures told to N peers would queue O(N²) frames.
    this.#handshaked.clear();
    this.#byNick.clear();
    for (const peer of [...this.#peers]) peer.conn.close('stopping');
    flushAllConnections();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#options.server.close(),
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

  #accept(socket: net.Socket): void {
    const conn = new PeerConnection(socket, {
      direction: 'inbound',
      logger: this.#logger,
      ...(this.#options.now !== undefined ? { now: this.#options.now } : {}),
    });
    const peer = new DirectoryPeer(conn);
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
      onEnvelope: (envelope) => {
        this.#handleEnvelope(peer, envelope);
      },
      onClose: (err) => {
        this.#handleClose(peer, err);
      },
    });
    conn.logger.debug('peer connected');
  }

  #handleEnvelope(peer: DirectoryPeer, envelope: Envelope): void {
    switch (envelope.type) {
      case MessageType.HANDSHAKE:
        this.#handleHandshake(peer, envelope.line);
        return;
      case MessageType.PUBMSG:
        this.#handlePubmsg(peer, envelope.line);
        return;
      case MessageType.PRIVMSG:
        this.#handlePrivmsg(peer, envelope.line);
        return;
      case MessageType.GETPEERLIST:
        this.#handleGetPeerlist(peer);
        return;
      case MessageType.PING:
        // ng: the directory answers a client's 798 with 799 (spec §4.7); only to peers that
        // advertised `ping`, so a reference peer never receives a 799 (spec §1.4).
        if (peer.features.has('ping')) peer.conn.send(MessageType.PONG, '');
        return;
      case MessageType.NICK_AUTH_PROOF:
        this.#handleNickAuthProof(peer, envelope.line);
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
        // 789 from a client, 799, unknown types: ignored, as the reference does (spec §1.4).
        this.counters.add('ignored.type');
        peer.conn.logger.debug({ type: envelope.type }, 'ignoring message type');
    }
  }

  #handleHandshake(peer: DirectoryPeer, line: string): void {
    if (peer.state !== 'connected') {
      // The reference ignores a second handshake (spec §2.5 rule 1).
      this.counters.add('ignored.second-handshake');
      return;
    }
    const handshake = parseClientHandshake(line);
    if (handshake === undefined) {
      // Malformed or mistyped: silence, the peer stays connected (spec §2.5 rule 2).
      this.counters.add('ignored.malformed-handshake');
      peer.conn.logger.info('malformed handshake ignored');
      return;
    }
    const features = featuresOf(handshake.features);
    const mode = this.#nickAuthMode;
    const negotiatesNickAuth = mode !== 'disabled' && features.has('nick_auth');
    let reason: string | undefined;
    const verdict = evaluateClientHandshake(handshake, { network: this.#options.network });
    if (!verdict.accepted) reason = verdict.reason;
    else if (!isValidNick(handshake.nick)) reason = 'nick is not a JoinMarket nick';
    else if (handshake.nick === this.#options.identity.nick) reason = 'nick is the directory nick';
    else if (mode === 'require_verified' && !negotiatesNickAuth)
      reason = 'verified nick authentication required';
    else {
      const location = parseLocation(handshake.locationString);
      const accept = this.#options.acceptLocation;
      const owner = this.#byNick.get(handshake.nick);
      if (accept !== undefined && !accept(location)) reason = 'location not admitted here';
      // First live owner keeps its nick (ng peer_registry); only a peer about to prove the nick's
      // key may displace the owner: an unverified one, or a verified one with the same key (its
      // stale connection, docs/protocol.md §13.1). An unproven claim of a live nick is refused.
      else if (owner?.conn.isOpen === true && !negotiatesNickAuth) reason = 'nick already in use';
    }
    const accepted = reason === undefined;
    peer.conn.send(
      MessageType.DN_HANDSHAKE,
      encodeDirectoryHandshake({
        appName: JM_APP_NAME,
        directory: true,
        protoVerMin: JM_PROTOCOL_VERSION,
        protoVerMax: JM_PROTOCOL_VERSION,
        features: this.#handshakeFeatures,
        accepted,
        nick: this.#options.identity.nick,
        network: this.#options.network,
        motd: accepted ? this.#options.motd : `Rejected: ${reason ?? ''}`,
      }),
    );
    if (!accepted) {
      peer.conn.logger.info({ nick: handshake.nick, reason }, 'handshake rejected');
      this.counters.add('handshake.rejected');
      // The reference leaves the rejected peer to hang up; we hang up after the 795 is flushed.
      peer.conn.close('rejected');
      return;
    }
    peer.conn.handshakeDone();
    peer.nick = handshake.nick;
    peer.location = handshake.locationString;
    peer.features = features;
    if (negotiatesNickAuth) {
      // 795 accepted, then the 803 challenge; HANDSHAKED only after a good 805 (spec §9.6).
      peer.state = 'authenticating';
      peer.handshakeLine = line;
      peer.challenge = createNickAuthChallenge(
        this.#options.nickAuth?.directoryId ?? this.#options.ownLocation.toLowerCase(),
      );
      peer.conn.send(MessageType.NICK_AUTH_CHALLENGE, buildNickAuthChallengeLine(peer.challenge));
      peer.conn.armHandshakeDeadline(NICK_AUTH_TIMEOUT_MS, () => {
        if (peer.state === 'authenticating') this.#finishNickAuth(peer, 'expired');
      });
      return;
    }
    this.#register(peer);
  }

  #handleNickAuthProof(peer: DirectoryPeer, line: string): void {
    if (
      peer.state !== 'authenticating' ||
      peer.challenge === undefined ||
      peer.nick === undefined
    ) {
      // Any nick-auth message outside a negotiated exchange ends the connection (spec §9.6).
      this.counters.add('disconnected.unexpected-nick-auth');
      peer.conn.destroy('protocol-violation');
      return;
    }
    const verdict = verifyNickAuth(
      line,
      peer.challenge.challenge,
      peer.challenge.directoryId,
      peer.handshakeLine,
      peer.nick,
    );
    if (verdict !== 'ok') {
      this.#finishNickAuth(peer, verdict);
      return;
    }
    const provenKey = parseNickAuthProofLine(line)?.pubkey;
    const owner = this.#byNick.get(peer.nick);
    if (
      owner !== undefined &&
      owner !== peer &&
      owner.conn.isOpen &&
      owner.verified &&
      owner.verifiedKey !== provenKey
    ) {
      this.#finishNickAuth(peer, 'policy');
      return;
    }
    peer.verifiedKey = provenKey;
    this.#finishNickAuth(peer, 'ok');
  }

  #finishNickAuth(peer: DirectoryPeer, code: NickAuthResultCode): void {
    peer.conn.handshakeDone();
    peer.challenge = undefined;
    peer.handshakeLine = '';
    peer.conn.send(MessageType.NICK_AUTH_RESULT, buildNickAuthResultLine(code));
    this.counters.add(`nick-auth.${code}`);
    if (code !== 'ok') {
      peer.conn.logger.info({ nick: peer.nick, code }, 'nick authentication failed; disconnecting');
      peer.conn.close('rejected');
      return;
    }
    peer.verified = true;
    const owner = peer.nick === undefined ? undefined : this.#byNick.get(peer.nick);
    if (owner !== undefined && owner !== peer) {
      // An unverified owner, or a verified one with the same key: its connection is stale (ng
      // peer_registry lets the proven key take over, docs/protocol.md §13.1).
      const kind = owner.verified ? 'same-key' : 'unverified';
      owner.conn.logger.info({ nick: owner.nick, kind }, 'nick owner replaced by a verified peer');
      this.counters.add(`displaced.${kind}`);
      owner.conn.destroy('replaced');
    }
    this.#register(peer);
  }

  #register(peer: DirectoryPeer): void {
    if (peer.nick === undefined || peer.location === undefined) return;
    peer.state = 'handshaked';
    peer.entry = encodePeerlistEntry({
      nick: peer.nick,
      location: peer.location,
      disconnected: false,
    });
    peer.entryWithFeatures =
      peer.features.size > 0
        ? encodePeerlistEntry({
            nick: peer.nick,
            location: peer.location,
            disconnected: false,
            features: [...peer.features],
          })
        : peer.entry;
    const peerlistFrame = (entry: string): Uint8Array =>
      encodeLine(
        encodeEnvelope(
          MessageType.PEERLIST,
          peer.isServing ? `${this.#ownEntry},${entry}` : this.#ownEntry,
        ),
      );
    peer.relayPeerlistFrame = peerlistFrame(peer.entry);
    peer.relayPeerlistFrameWithFeatures = peerlistFrame(peer.entryWithFeatures);
    this.#byNick.set(peer.nick, peer);
    this.#handshaked.add(peer);
    this.counters.add('handshake.accepted');
    peer.conn.logger.info(
      { nick: peer.nick, location: peer.location, verified: peer.verified },
      'peer handshaked',
    );
  }

  /** Checks that a 685/687 comes from a handshaked peer under its own nick (spec §4.1, ng rule). */
  #senderOf(
    peer: DirectoryPeer,
    line: string,
  ): { from: string; to: string; message: string } | undefined {
    if (peer.state !== 'handshaked') {
      this.counters.add(dropCounter('not-handshaked'));
      return undefined;
    }
    const parsed = parseChannelLine(line);
    if (parsed === undefined) {
      this.counters.add(dropCounter('malformed'));
      return undefined;
    }
    if (parsed.from !== peer.nick) {
      this.counters.add(dropCounter('spoofed-sender'));
      peer.conn.logger.warn({ claimed: parsed.from }, 'message under another nick dropped');
      return undefined;
    }
    return parsed;
  }

  /**
   * Frames a message to relay, or returns undefined (counted as `dropped.too-long`) when its line
   * would exceed 65,536 bytes: relayed lines may be as long as ng relays them, while the lines we
   * compose ourselves stay within 40,000 bytes (docs/protocol.md §1.3, §13.1). Only a sender that
   * breaks the 40,000-byte rule can make a relayed line longer than that.
   */
  #relayFrame(type: number, line: string): Uint8Array | undefined {
    try {
      return encodeLineWithin(encodeEnvelope(type, line), MAX_RECEIVE_LINE_BYTES);
    } catch (err) {
      if (!hasCode(err, 'ERR_LINE_TOO_LONG')) throw err;
      this.counters.add(dropCounter('too-long'));
      return undefined;
    }
  }

  #handlePubmsg(peer: DirectoryPeer, line: string): void {
    const parsed = this.#senderOf(peer, line);
    if (parsed === undefined) return;
    if (parsed.to !== PUBLIC_NICK) {
      this.counters.add(dropCounter('pubmsg-not-public'));
      return;
    }
    // Re-serialized as from!PUBLIC<msg> (spec §4.2); encoded once for every recipient.
    const frame = this.#relayFrame(
      MessageType.PUBMSG,
      formatPubmsgLine(parsed.from, parsed.message),
    );
    if (frame === undefined) return;
    let recipients = 0;
    for (const other of this.#handshaked) {
      if (other === peer || other.nick === parsed.from) continue;
      if (other.conn.sendEncoded(frame)) recipients++;
    }
    this.#emitRelay('pubmsg', parsed.from, PUBLIC_NICK, parsed.message, line);
    this.counters.add('relayed.pubmsg');
    this.counters.add('relayed.pubmsg-copies', recipients);
  }

  #handlePrivmsg(peer: DirectoryPeer, line: string): void {
    const parsed = this.#senderOf(peer, line);
    if (parsed === undefined) return;
    const recipient = this.#byNick.get(parsed.to);
    if (recipient === undefined || recipient.state !== 'handshaked') {
      // Reference and ng both drop a privmsg to an unknown nick silently (spec §4.4).
      this.counters.add(dropCounter('unknown-recipient'));
      return;
    }
    const frame = this.#relayFrame(MessageType.PRIVMSG, line);
    if (frame === undefined) return;
    recipient.conn.sendEncoded(frame);
    // The reference then tells the recipient where the sender is (spec §3.3 case 1): the sender's
    // entry when it serves an onion, and always our own entry (first, as in the transcript). The
    // entry carries `;F:` only for a recipient that asked for it: reference clients drop such
    // entries whole (spec §3.2).
    recipient.conn.sendEncoded(
      recipient.features.has('peerlist_features')
        ? peer.relayPeerlistFrameWithFeatures
        : peer.relayPeerlistFrame,
    );
    this.#emitRelay('privmsg', parsed.from, parsed.to, parsed.message, line);
    this.counters.add('relayed.privmsg');
  }

  #handleGetPeerlist(peer: DirectoryPeer): void {
    if (peer.state !== 'handshaked') return;
    // ng (spec §3.4): every handshaked peer, NOT-SERVING ones included, our own entry excluded,
    // 20 entries per 789; a single empty 789 when there is nobody.
    const entries: PeerlistEntry[] = [];
    for (const other of this.#handshaked) {
      if (other.nick === undefined || other.location === undefined) continue;
      const entry: PeerlistEntry = {
        nick: other.nick,
        location: other.location,
        disconnected: false,
      };
      entries.push(
        peer.features.has('peerlist_features') && other.features.size > 0
          ? { ...entry, features: [...other.features] }
          : entry,
      );
    }
    if (entries.length === 0) {
      peer.conn.send(MessageType.PEERLIST, '');
      return;
    }
    for (let i = 0; i < entries.length; i += GETPEERLIST_CHUNK_ENTRIES) {
      peer.conn.send(
        MessageType.PEERLIST,
        encodePeerlist(entries.slice(i, i + GETPEERLIST_CHUNK_ENTRIES)),
      );
    }
    this.counters.add('answered.getpeerlist');
  }

  #handleClose(peer: DirectoryPeer, err: Error | undefined): void {
    this.#peers.delete(peer);
    const wasHandshaked = peer.state === 'handshaked';
    peer.state = 'closed';
    if (!wasHandshaked || peer.nick === undefined || !this.#started) return;
    this.#handshaked.delete(peer);
    if (this.#byNick.get(peer.nick) === peer) this.#byNick.delete(peer.nick);
    peer.conn.logger.info({ nick: peer.nick, reason: err?.message }, 'peer left');
    // Tell everybody else (docs/protocol.md §3.3 case 2): our own entry plus `nick;location;D`;
    // departures in the same event-loop turn go out together (directory-departures.ts).
    this.#departures.add(peer.nick, peer.location);
  }
}
