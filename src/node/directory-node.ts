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
import type { NickIdentity } from '../message/nick.js';
import {
  buildNickAuthChallengeLine,
  buildNickAuthResultLine,
  createNickAuthChallenge,
  verifyNickAuth,
  type NickAuthChallenge,
  type NickAuthResultCode,
} from '../message/nick-auth.js';
import { flushAllConnections, PeerConnection } from '../peer/connection.js';
import type { ServerTransport } from '../peer/transport.js';
import { encodeEnvelope, type Envelope } from '../wire/envelope.js';
import { encodeLine } from '../wire/framing.js';
import {
  encodeDirectoryHandshake,
  evaluateClientHandshake,
  featuresOf,
  isValidNick,
  JM_APP_NAME,
  JM_PROTOCOL_VERSION,
  parseClientHandshake,
} from '../wire/handshake.js';
import { NOT_SERVING_ONION, parseLocation, type Location } from '../wire/location.js';
import { MessageType } from '../wire/message-types.js';
import { encodePeerlist, encodePeerlistEntry, type PeerlistEntry } from '../wire/peerlist.js';
import { Counters, dropCounter } from './counters.js';

/** ng closes a connection whose first line does not arrive within 30 s (spec §2.5, ng directory). */
export const DIRECTORY_HANDSHAKE_TIMEOUT_MS = 30_000;
/** How long {@link DirectoryNode.stop} waits for the listener to close. */
export const DIRECTORY_STOP_DEADLINE_MS = 5_000;
/** ng answers getpeerlist in chunks of 20 entries (spec §3.4). */
export const GETPEERLIST_CHUNK_ENTRIES = 20;

/**
 * A coalesced departure peerlist stays below this many characters (all ASCII), leaving room for the
 * envelope under the 40,000-byte send limit (spec §1.3).
 */
const DEPARTURE_LINE_MAX_CHARS = 39_000;

/** ng: a peer has 30 s to answer a nick-auth challenge (spec §9.6, `nick_auth_timeout`). */
export const NICK_AUTH_TIMEOUT_MS = 30_000;

/** Heartbeat timers in ms (spec §4.7: ng sweeps every 60 s, probes after 600 s idle, waits 30 s, evicts after 1,500 s). */
export interface HeartbeatOptions {
  readonly sweepIntervalMs: number;
  readonly probeIdleMs: number;
  readonly pongTimeoutMs: number;
  readonly evictIdleMs: number;
}

/** ng's heartbeat defaults (spec §4.7). */
export const DEFAULT_HEARTBEAT: HeartbeatOptions = {
  sweepIntervalMs: 60_000,
  probeIdleMs: 600_000,
  pongTimeoutMs: 30_000,
  evictIdleMs: 1_500_000,
};

/** Nick authentication policy (JMP-0005, spec §9.6). */
export interface NickAuthPolicy {
  readonly mode: 'prefer_verified' | 'require_verified' | 'disabled';
  /** Our directory-id, bound into every proof: by default our own location, lower-cased. */
  readonly directoryId: string;
}

/** A relayed message, as reported to local observers (the operator's API). */
export interface RelayEvent {
  readonly kind: 'privmsg' | 'pubmsg';
  readonly from: string;
  readonly to: string;
  /** The command word (first token after `!`). */
  readonly cmd: string;
  /** The `line` relayed, exactly as sent on. */
  readonly line: string;
}

/** Options of a {@link DirectoryNode}. */
export interface DirectoryNodeOptions {
  readonly identity: NickIdentity;
  /** The handshake network name (spec §2.2). */
  readonly network: string;
  /** Our own location string: `<onion>:5222`, or `127.0.0.1:<port>` in testing mode (spec §2.2). */
  readonly ownLocation: string;
  /** The motd sent in every 795 (spec §2.4). */
  readonly motd: string;
  readonly server: ServerTransport;
  readonly logger: Logger;
  /**
   * Which advertised peer locations we admit (a policy, answered with `accepted:false`). Default:
   * any location that parses. On Tor, the daemon admits only v3 onions and NOT-SERVING-ONION, as
   * ng does (spec §2.1).
   */
  readonly acceptLocation?: (location: Location) => boolean;
  /** See {@link DIRECTORY_HANDSHAKE_TIMEOUT_MS}. */
  readonly handshakeTimeoutMs?: number;
  /**
   * Features advertised in our 795 (spec §9.1); the reference sends `{}`. `nick_auth` is set or
   * removed according to {@link DirectoryNodeOptions.nickAuth} (spec §9.6).
   */
  readonly features?: Readonly<Record<string, boolean>>;
  /** Idle-peer probing and eviction (spec §4.7); default {@link DEFAULT_HEARTBEAT}. */
  readonly heartbeat?: HeartbeatOptions;
  /** Nick authentication; default disabled (the reference has none). */
  readonly nickAuth?: NickAuthPolicy;
  /** Clock in ms; default `Date.now`. */
  readonly now?: () => number;
}

/** What the directory node knows of one connected peer. */
export interface DirectoryPeerInfo {
  readonly connectionId: number;
  readonly nick: string | undefined;
  readonly location: string | undefined;
  readonly state: 'connected' | 'authenticating' | 'handshaked';
  readonly verified: boolean;
  readonly features: readonly string[];
  readonly remote: string;
}

class DirectoryPeer {
  state: 'connected' | 'authenticating' | 'handshaked' | 'closed' = 'connected';
  nick: string | undefined;
  location: string | undefined;
  features: ReadonlySet<string> = new Set();
  /** True once the peer proved it holds its nick's key (spec §9.6). */
  verified = false;
  /** `nick;location`, cached: it is sent after every relay of this peer's privmsgs. */
  entry = '';
  /** `nick;location;F:…`, for recipients that advertised peerlist_features (spec §3.4). */
  entryWithFeatures = '';
  /**
   * The 789 frames sent after relaying this peer's privmsgs (spec §3.3 case 1), encoded once at
   * registration: plain, and with `;F:` for recipients that advertised peerlist_features.
   */
  relayPeerlistFrame: Uint8Array = new Uint8Array();
  relayPeerlistFrameWithFeatures: Uint8Array = new Uint8Array();
  /** The exact 793 line and the challenge we sent, during nick authentication. */
  handshakeLine = '';
  challenge: NickAuthChallenge | undefined;

  constructor(readonly conn: PeerConnection) {}

  get isServing(): boolean {
    return this.location !== undefined && this.location !== NOT_SERVING_ONION;
  }
}

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
  #departures: { nick: string; entry: string }[] = [];
  readonly #heartbeat: HeartbeatOptions;
  /** The `features` of our 795: see the constructor. */
  readonly #handshakeFeatures: Record<string, boolean>;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #departuresTimer: NodeJS.Immediate | undefined;
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
    clearImmediate(this.#departuresTimer);
    this.#departuresTimer = undefined;
    this.#departures = [];
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
      // key may displace an unverified owner, and nobody displaces a verified one (spec §9.2).
      else if (owner?.conn.isOpen === true && (owner.verified || !negotiatesNickAuth))
        reason = 'nick already in use';
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
    const owner = this.#byNick.get(peer.nick);
    if (owner !== undefined && owner !== peer && owner.conn.isOpen && owner.verified) {
      this.#finishNickAuth(peer, 'policy');
      return;
    }
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
      owner.conn.logger.info({ nick: owner.nick }, 'unverified owner displaced by a verified peer');
      this.counters.add('displaced.unverified');
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
   * would exceed the 40,000-byte send limit (spec §1.3, §10). Such a line was within our 65,536-byte
   * receive limit, so its sender broke no rule and stays connected; we only refuse to pass on what
   * a reference recipient would drop its connection for.
   */
  #relayFrame(type: number, line: string): Uint8Array | undefined {
    try {
      return encodeLine(encodeEnvelope(type, line));
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
    // Tell everybody else (spec §3.3 case 2): our own entry plus `nick;location;D`. Departures in
    // the same event-loop turn go out together (see #flushDepartures).
    this.#departures.push({
      nick: peer.nick,
      entry: encodePeerlistEntry({
        nick: peer.nick,
        location: peer.location ?? NOT_SERVING_ONION,
        disconnected: true,
      }),
    });
    if (this.#departures.length === 1)
      this.#departuresTimer = setImmediate(() => {
        this.#departuresTimer = undefined;
        this.#flushDepartures();
      });
  }

  /**
   * Sends the departures collected in this event-loop turn to every remaining handshaked peer: one
   * 789 `own,gone1,gone2,…` instead of one per departure, split to stay under the 40,000-byte line
   * limit (spec §1.3). A lone departure gives exactly the reference's line; reference clients
   * read every `;D` entry of a multi-entry peerlist (spec §3.2). Without this, a mass disconnect
   * of N peers (a network blip) would queue N² frames at once.
   */
  #flushDepartures(): void {
    const gone = this.#departures;
    this.#departures = [];
    if (!this.#started || gone.length === 0) return;
    const frames = this.#departureFrames(gone);
    const goneNicks = new Set(gone.map((d) => d.nick));
    for (const other of this.#handshaked) {
      // A peer that took over a departed nick (a verified newcomer) is not told its own nick left.
      const own = other.nick !== undefined && goneNicks.has(other.nick);
      for (const frame of own
        ? this.#departureFrames(gone.filter((d) => d.nick !== other.nick))
        : frames) {
        other.conn.sendEncoded(frame);
      }
    }
    this.counters.add('departures.announced', gone.length);
  }

  #departureFrames(gone: readonly { entry: string }[]): Uint8Array[] {
    if (gone.length === 0) return [];
    const frames: Uint8Array[] = [];
    let line = this.#ownEntry;
    for (const { entry } of gone) {
      if (line.length + 1 + entry.length > DEPARTURE_LINE_MAX_CHARS && line !== this.#ownEntry) {
        frames.push(encodeLine(encodeEnvelope(MessageType.PEERLIST, line)));
        line = this.#ownEntry;
      }
      line += `,${entry}`;
    }
    frames.push(encodeLine(encodeEnvelope(MessageType.PEERLIST, line)));
    return frames;
  }
}
