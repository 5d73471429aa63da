/**
 * Directory node policy (spec §2.5, §3.3, §3.4, §4.2, §4.4, §10 "Directory role"): accepts
 * handshakes, relays pubmsgs to every other handshaked peer and privmsgs to the owner of the
 * recipient nick, and sends peerlists as the reference does. Every per-message lookup is O(1) in
 * the number of peers (a map from nick to peer); only broadcasts touch every peer, and they encode
 * the frame once.
 */
import type net from 'node:net';
import type { Logger } from '../log.js';
import { PUBLIC_NICK, parseChannelLine, formatPubmsgLine } from '../message/privmsg.js';
import type { NickIdentity } from '../message/nick.js';
import { PeerConnection } from '../peer/connection.js';
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
import { Counters } from './counters.js';

/** ng closes a connection whose first line does not arrive within 30 s (spec §2.5, ng directory). */
export const DIRECTORY_HANDSHAKE_TIMEOUT_MS = 30_000;
/** ng answers getpeerlist in chunks of 20 entries (spec §3.4). */
export const GETPEERLIST_CHUNK_ENTRIES = 20;

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
  /** Features advertised in our 795 (spec §9.1); the reference sends `{}`. */
  readonly features?: Readonly<Record<string, boolean>>;
  /** Clock in ms; default `Date.now`. */
  readonly now?: () => number;
}

/** What the directory node knows of one connected peer. */
export interface DirectoryPeerInfo {
  readonly connectionId: number;
  readonly nick: string | undefined;
  readonly location: string | undefined;
  readonly state: 'connected' | 'handshaked';
  readonly features: readonly string[];
  readonly remote: string;
}

class DirectoryPeer {
  state: 'connected' | 'handshaked' | 'closed' = 'connected';
  nick: string | undefined;
  location: string | undefined;
  features: ReadonlySet<string> = new Set();
  /** `nick;location`, cached: it is sent after every relay of this peer's privmsgs. */
  entry = '';
  handshakeTimer: NodeJS.Timeout | undefined;

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
  #started = false;

  constructor(options: DirectoryNodeOptions) {
    this.#options = options;
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

  /** Starts accepting peers. Idempotent. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.#options.server.listen((socket) => {
      this.#accept(socket);
    });
    this.#logger.info({ location: this.#options.ownLocation }, 'directory node listening');
  }

  /** Stops accepting and closes every peer connection. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    await this.#options.server.close();
    for (const peer of [...this.#peers]) peer.conn.close();
  }

  /** A snapshot of the connected peers. */
  peers(): DirectoryPeerInfo[] {
    return [...this.#peers].map((peer) => ({
      connectionId: peer.conn.id,
      nick: peer.nick,
      location: peer.location,
      state: peer.state === 'handshaked' ? 'handshaked' : 'connected',
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
    peer.handshakeTimer = setTimeout(() => {
      if (peer.state === 'connected') {
        conn.logger.info('no handshake in time; disconnecting');
        this.counters.add('disconnected.handshake-timeout');
        conn.close();
      }
    }, this.#options.handshakeTimeoutMs ?? DIRECTORY_HANDSHAKE_TIMEOUT_MS);
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
      case MessageType.DN_HANDSHAKE:
        // A peer claiming to be a directory towards a directory: the reference asserts and drops.
        peer.conn.logger.warn('dn-handshake received by a directory node; disconnecting');
        this.counters.add('disconnected.unexpected-795');
        peer.conn.destroy();
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
    let reason: string | undefined;
    const verdict = evaluateClientHandshake(handshake, { network: this.#options.network });
    if (!verdict.accepted) reason = verdict.reason;
    else if (!isValidNick(handshake.nick)) reason = 'nick is not a JoinMarket nick';
    else if (handshake.nick === this.#options.identity.nick) reason = 'nick is the directory nick';
    else {
      const location = parseLocation(handshake.locationString);
      const accept = this.#options.acceptLocation;
      if (accept !== undefined && !accept(location)) reason = 'location not admitted here';
      else {
        const owner = this.#byNick.get(handshake.nick);
        if (owner !== undefined && owner.conn.isOpen) reason = 'nick already in use';
      }
    }
    const accepted = reason === undefined;
    peer.conn.send(
      MessageType.DN_HANDSHAKE,
      encodeDirectoryHandshake({
        appName: JM_APP_NAME,
        directory: true,
        protoVerMin: JM_PROTOCOL_VERSION,
        protoVerMax: JM_PROTOCOL_VERSION,
        features: { ...this.#options.features },
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
      peer.conn.close();
      return;
    }
    clearTimeout(peer.handshakeTimer);
    peer.state = 'handshaked';
    peer.nick = handshake.nick;
    peer.location = handshake.locationString;
    peer.features = featuresOf(handshake.features);
    peer.entry = encodePeerlistEntry({ nick: handshake.nick, location: handshake.locationString, disconnected: false });
    this.#byNick.set(handshake.nick, peer);
    this.#handshaked.add(peer);
    this.counters.add('handshake.accepted');
    peer.conn.logger.info({ nick: peer.nick, location: peer.location }, 'peer handshaked');
  }

  /** Checks that a 685/687 comes from a handshaked peer under its own nick (spec §4.1, ng rule). */
  #senderOf(peer: DirectoryPeer, line: string): { from: string; to: string; message: string } | undefined {
    if (peer.state !== 'handshaked') {
      this.counters.add('dropped.not-handshaked');
      return undefined;
    }
    const parsed = parseChannelLine(line);
    if (parsed === undefined) {
      this.counters.add('dropped.malformed');
      return undefined;
    }
    if (parsed.from !== peer.nick) {
      this.counters.add('dropped.spoofed-sender');
      peer.conn.logger.warn({ claimed: parsed.from }, 'message under another nick dropped');
      return undefined;
    }
    return parsed;
  }

  #handlePubmsg(peer: DirectoryPeer, line: string): void {
    const parsed = this.#senderOf(peer, line);
    if (parsed === undefined) return;
    if (parsed.to !== PUBLIC_NICK) {
      this.counters.add('dropped.pubmsg-not-public');
      return;
    }
    // Re-serialized as from!PUBLIC<msg> (spec §4.2); encoded once for every recipient.
    const frame = encodeLine(encodeEnvelope(MessageType.PUBMSG, formatPubmsgLine(parsed.from, parsed.message)));
    let recipients = 0;
    for (const other of this.#handshaked) {
      if (other === peer || other.nick === parsed.from) continue;
      if (other.conn.sendEncoded(frame)) recipients++;
    }
    this.counters.add('relayed.pubmsg');
    this.counters.add('relayed.pubmsg-copies', recipients);
  }

  #handlePrivmsg(peer: DirectoryPeer, line: string): void {
    const parsed = this.#senderOf(peer, line);
    if (parsed === undefined) return;
    const recipient = this.#byNick.get(parsed.to);
    if (recipient === undefined || recipient.state !== 'handshaked') {
      // Reference and ng both drop a privmsg to an unknown nick silently (spec §4.4).
      this.counters.add('dropped.unknown-recipient');
      return;
    }
    recipient.conn.send(MessageType.PRIVMSG, line);
    // The reference then tells the recipient where the sender is (spec §3.3 case 1): the sender's
    // entry when it serves an onion, and always our own entry (first, as in the transcript).
    recipient.conn.send(MessageType.PEERLIST, peer.isServing ? `${this.#ownEntry},${peer.entry}` : this.#ownEntry);
    this.counters.add('relayed.privmsg');
  }

  #handleGetPeerlist(peer: DirectoryPeer): void {
    if (peer.state !== 'handshaked') return;
    // ng (spec §3.4): every handshaked peer, NOT-SERVING ones included, our own entry excluded,
    // 20 entries per 789; a single empty 789 when there is nobody.
    const entries: PeerlistEntry[] = [];
    for (const other of this.#handshaked) {
      if (other.nick === undefined || other.location === undefined) continue;
      const entry: PeerlistEntry = { nick: other.nick, location: other.location, disconnected: false };
      entries.push(peer.features.has('peerlist_features') && other.features.size > 0 ? { ...entry, features: [...other.features] } : entry);
    }
    if (entries.length === 0) {
      peer.conn.send(MessageType.PEERLIST, '');
      return;
    }
    for (let i = 0; i < entries.length; i += GETPEERLIST_CHUNK_ENTRIES) {
      peer.conn.send(MessageType.PEERLIST, encodePeerlist(entries.slice(i, i + GETPEERLIST_CHUNK_ENTRIES)));
    }
    this.counters.add('answered.getpeerlist');
  }

  #handleClose(peer: DirectoryPeer, err: Error | undefined): void {
    clearTimeout(peer.handshakeTimer);
    this.#peers.delete(peer);
    const wasHandshaked = peer.state === 'handshaked';
    peer.state = 'closed';
    if (!wasHandshaked || peer.nick === undefined) return;
    this.#handshaked.delete(peer);
    if (this.#byNick.get(peer.nick) === peer) this.#byNick.delete(peer.nick);
    peer.conn.logger.info({ nick: peer.nick, reason: err?.message }, 'peer left');
    // Tell everybody else (spec §3.3 case 2): `nick;location;D` plus our own entry.
    const gone = encodePeerlistEntry({ nick: peer.nick, location: peer.location ?? NOT_SERVING_ONION, disconnected: true });
    const frame = encodeLine(encodeEnvelope(MessageType.PEERLIST, `${this.#ownEntry},${gone}`));
    for (const other of this.#handshaked) other.conn.sendEncoded(frame);
  }
}
