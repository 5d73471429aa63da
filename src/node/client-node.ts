/**
 * Maker and taker policy (spec §2.3-§2.8, §4, §10 "Maker role", "Taker role"): links to every
 * directory node with handshake and reconnect, direct peer links (793 both ways, spec §2.5, §4.5),
 * routing of privmsgs (direct when a handshaked link exists, else through a directory that carried
 * that nick's traffic, spec §4.3), duplicate suppression, signature checks, and the offer
 * behaviour of jmdaemon (a maker announces its offers and answers `!orderbook`; a taker keeps the
 * orderbook it hears). Applications talk to it through {@link ClientNode.pubmsg},
 * {@link ClientNode.privmsg} and the events of {@link ClientNode.on}.
 */
import type net from 'node:net';
import { OnionmcError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  isEncryptedCommand,
  isPrivmsgCommandAllowed,
  OFFER_TYPES,
  splitCommands,
} from '../message/commands.js';
import {
  buildNickAuthProofLine,
  directoryIdForEndpoint,
  parseNickAuthChallengeLine,
  parseNickAuthResultLine,
  signNickAuth,
} from '../message/nick-auth.js';
import type { NickIdentity } from '../message/nick.js';
import {
  formatPubmsgLine,
  parseChannelLine,
  PUBLIC_NICK,
  signPrivmsg,
  verifyPrivmsg,
} from '../message/privmsg.js';
import { PeerConnection } from '../peer/connection.js';
import type { Dialer, ServerTransport } from '../peer/transport.js';
import type { Envelope } from '../wire/envelope.js';
import { encodeLine } from '../wire/framing.js';
import { encodeEnvelope } from '../wire/envelope.js';
import {
  encodeClientHandshake,
  evaluateClientHandshake,
  evaluateDirectoryHandshake,
  featuresOf,
  isValidNick,
  JM_APP_NAME,
  JM_PROTOCOL_VERSION,
  parseClientHandshake,
  parseDirectoryHandshake,
} from '../wire/handshake.js';
import { NOT_SERVING_ONION, parseLocation } from '../wire/location.js';
import { MessageType } from '../wire/message-types.js';
import { decodePeerlist } from '../wire/peerlist.js';
import { Backoff, DEFAULT_DIRECTORY_BACKOFF, type BackoffOptions } from './backoff.js';
import { Counters } from './counters.js';
import { EncryptionSessions } from './encryption-sessions.js';
import { DuplicateFilter } from './dedup.js';
import { formatOfferArgs, Orderbook, parseOffer, type Offer } from './offers.js';

/** How long we wait for the other side's handshake on any link (reference startup wait, spec §2.8). */
export const LINK_HANDSHAKE_TIMEOUT_MS = 60_000;
/** A maker answers `!orderbook` from one nick at most this often (ng maker, spec §9.3). */
export const ORDERBOOK_REPLY_INTERVAL_MS = 10_000;
/** After a failed direct dial, wait at least this long before dialing that peer again. */
export const PEER_REDIAL_MIN_MS = 2_000;
/** ... and at most this long (ng: 2 s × 2ⁿ, exponent capped at 5, spec §4.5). */
export const PEER_REDIAL_MAX_MS = 64_000;

/** A directory link silent this long is probed with 798, when the directory advertised `ping`. */
export const DIRECTORY_PROBE_IDLE_MS = 120_000;
/** A probed directory link that stays silent this long is dropped and redialed (ng: 30 s, spec §4.7). */
export const DIRECTORY_PROBE_TIMEOUT_MS = 30_000;
/** Keepalive of directory links, for {@link PeerConnection.liveness}. */
const DIRECTORY_LIVENESS = {
  probeIdleMs: DIRECTORY_PROBE_IDLE_MS,
  pongTimeoutMs: DIRECTORY_PROBE_TIMEOUT_MS,
  evictIdleMs: Infinity,
} as const;

/** How often directory links are checked. */
export const DIRECTORY_PROBE_INTERVAL_MS = 15_000;

/** Role of a non-directory node: a maker serves (an onion, or a port in testing mode), a taker does not. */
export type ClientRole = 'maker' | 'taker';

/** Options of a {@link ClientNode}. */
export interface ClientNodeOptions {
  readonly role: ClientRole;
  readonly identity: NickIdentity;
  /** The handshake network name (spec §2.2). */
  readonly network: string;
  /** Our location string: `NOT-SERVING-ONION` for a taker (spec §2.1). Can change later (new onion). */
  readonly ownLocation: string;
  /** Directory locations `host:port`, from `directory_nodes`. */
  readonly directories: readonly string[];
  readonly dialer: Dialer;
  /** Where a maker accepts direct links; undefined for a taker. */
  readonly server?: ServerTransport;
  readonly logger: Logger;
  /** Features we advertise in our 793 (spec §9.1). The reference sends `{}`. */
  readonly features?: Readonly<Record<string, boolean>>;
  /**
   * End-to-end encryption by the daemon (spec §7), default true. False is raw mode: `fill`,
   * `pubkey` and the encrypted commands pass between the wire and the application unchanged, for an
   * application that does JoinMarket's key exchange itself, and for replaying captured traffic
   * whose payloads are not real key exchanges.
   */
  readonly endToEnd?: boolean;
  /** Reconnect backoff for directory links. */
  readonly backoff?: BackoffOptions;
  /** See {@link LINK_HANDSHAKE_TIMEOUT_MS}. */
  readonly handshakeTimeoutMs?: number;
  /** Clock in ms and random source in [0,1): injectable for tests. */
  readonly now?: () => number;
  readonly random?: () => number;
}

/** Where a delivered message came from. */
export type Via =
  { readonly kind: 'direct' } | { readonly kind: 'directory'; readonly location: string };

/** Events an application can subscribe to. */
export interface ClientNodeEvents {
  /**
   * A verified privmsg for us. `body` excludes the pubkey and signature; for an encrypted command
   * it is the decrypted plaintext (`encrypted: true`); for `!fill` and `!pubkey` the NaCl key,
   * which the daemon owns, is taken out.
   */
  privmsg: { from: string; cmd: string; body: string; via: Via; encrypted: boolean };
  /** A pubmsg (unsigned, spec §5.6). `message` starts with `!`. */
  pubmsg: { from: string; message: string; via: Via };
  /** No directory carries this nick any more (spec §3.2). */
  nickLeave: { nick: string };
  /** A directory link was handshaked or lost. */
  directory: { location: string; nick: string | undefined; up: boolean; motd?: string };
  /** A direct peer link was handshaked or lost. */
  peer: { nick: string; up: boolean; direction: 'inbound' | 'outbound' };
  /** A directory sent a peerlist (spec §3): how many entries announced a peer or a departure. */
  peerlist: { directory: string; joined: number; left: number };
  /** A message was dropped; `reason` is a short code. */
  dropped: { from: string | undefined; reason: string };
}

/** What {@link ClientNode.privmsg} did with a message. */
export type SendResult = Via;

/** Options of {@link ClientNode.privmsg}. */
export interface PrivmsgOptions {
  /** `directory`: never use a direct link nor dial one for this message. Default `any`. */
  readonly route?: 'any' | 'directory';
}

type Listener<K extends keyof ClientNodeEvents> = (event: ClientNodeEvents[K]) => void;

/** A link to one configured directory node. */
class DirectoryLink {
  state: 'idle' | 'connecting' | 'handshaking' | 'authenticating' | 'handshaked' | 'stopped' =
    'idle';
  /** The exact 793 line sent on the current connection (nick-auth signs its hash, spec §9.6). */
  handshakeLine = '';
  conn: PeerConnection | undefined;
  nick: string | undefined;
  motd: string | undefined;
  features: ReadonlySet<string> = new Set();
  handshakedAt = 0;
  timer: NodeJS.Timeout | undefined;
  abort: AbortController | undefined;
  /** Set by relocate(): the next reconnect happens without delay. */
  reconnectNow = false;
  readonly backoff: Backoff;

  constructor(
    readonly location: string,
    readonly host: string,
    readonly port: number,
    backoff: Backoff,
  ) {
    this.backoff = backoff;
  }
}

/** A direct link to another maker or taker. */
class PeerLink {
  state: 'handshaking' | 'handshaked' | 'closed' = 'handshaking';
  nick: string | undefined;
  location: string | undefined;
  features: ReadonlySet<string> = new Set();

  constructor(
    readonly conn: PeerConnection,
    /** For outbound links: the nick we dialed. */
    readonly expectedNick: string | undefined,
  ) {}
}

/** What we know of another nick. */
interface KnownPeer {
  location: string | undefined;
  /** Directories that delivered messages from this nick (spec §4.3). */
  readonly directories: Set<DirectoryLink>;
  /** Handshaked direct link, if any. */
  link: PeerLink | undefined;
  dialing: boolean;
  dialFailures: number;
  nextDialAt: number;
  lastOrderbookReplyAt: number;
}

/** A JoinMarket maker or taker on the onion message channel. */
export class ClientNode {
  readonly #options: ClientNodeOptions;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #directories: DirectoryLink[];
  readonly #known = new Map<string, KnownPeer>();
  readonly #links = new Set<PeerLink>();
  readonly #dedup: DuplicateFilter;
  readonly #listeners = new Map<keyof ClientNodeEvents, Set<Listener<never>>>();
  readonly orderbook = new Orderbook();
  readonly counters = new Counters();
  readonly #sessions: EncryptionSessions;
  #sweepTimer: NodeJS.Timeout | undefined;
  #probeTimer: NodeJS.Timeout | undefined;
  #offers: readonly Offer[] = [];
  #ownLocation: string;
  #running = false;

  constructor(options: ClientNodeOptions) {
    this.#options = options;
    this.#ownLocation = options.ownLocation;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#logger = options.logger.child({ role: options.role, nick: options.identity.nick });
    this.#dedup = new DuplicateFilter({ now: this.#now });
    this.#sessions = new EncryptionSessions({ now: this.#now });
    this.#directories = options.directories.map((location) => {
      const parsed = parseLocation(location);
      if (parsed.kind !== 'hostport')
        throw new OnionmcError('ERR_CONFIG', `directory "${location}" is not host:port`);
      return new DirectoryLink(
        location,
        parsed.host,
        parsed.port,
        new Backoff(options.backoff ?? DEFAULT_DIRECTORY_BACKOFF, this.#random),
      );
    });
  }

  /** Our nick. */
  get nick(): string {
    return this.#options.identity.nick;
  }

  get role(): ClientRole {
    return this.#options.role;
  }

  /** Our location string. */
  get location(): string {
    return this.#ownLocation;
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof ClientNodeEvents>(event: K, listener: Listener<K>): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }

  #emit<K extends keyof ClientNodeEvents>(event: K, payload: ClientNodeEvents[K]): void {
    const set = this.#listeners.get(event);
    if (set === undefined) return;
    for (const listener of set) {
      try {
        (listener as Listener<K>)(payload);
      } catch (err) {
        this.#logger.error({ err, event }, 'event listener failed');
      }
    }
  }

  /** Starts serving (maker) and dialing every directory. Idempotent. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    if (this.#options.server !== undefined) {
      await this.#options.server.listen((socket) => {
        this.#acceptPeer(socket);
      });
    }
    this.#sweepTimer = setInterval(() => this.#sessions.sweep(), 60_000);
    this.#sweepTimer.unref();
    this.#probeTimer = setInterval(() => {
      this.probeDirectories();
    }, DIRECTORY_PROBE_INTERVAL_MS);
    this.#probeTimer.unref();
    this.#logger.info(
      { location: this.#ownLocation, directories: this.#directories.length },
      'node starting',
    );
    for (const link of this.#directories) this.#connectDirectory(link);
  }

  /** Closes every link and stops reconnecting. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    clearInterval(this.#sweepTimer);
    clearInterval(this.#probeTimer);
    this.#sessions.clear();
    for (const link of this.#directories) {
      link.state = 'stopped';
      clearTimeout(link.timer);
      link.abort?.abort();
      link.conn?.close('stopping');
    }
    for (const link of [...this.#links]) link.conn.close('stopping');
    await this.#options.server?.close();
  }

  /**
   * Changes our location (e.g. a new onion after tor restarted) and re-handshakes every directory
   * under it (spec §2.3: the location travels only in the handshake).
   */
  relocate(location: string): void {
    this.#ownLocation = location;
    for (const link of this.#directories) {
      // Not a failure: reconnect at once, and start the backoff over.
      link.backoff.reset();
      link.reconnectNow = true;
      if (
        link.state === 'handshaked' ||
        link.state === 'handshaking' ||
        link.state === 'authenticating'
      )
        link.conn?.close();
      else if (link.state === 'idle') {
        clearTimeout(link.timer);
        link.reconnectNow = false;
        this.#connectDirectory(link);
      }
    }
  }

  /** Directory links, for status output. */
  directoryStatus(): {
    location: string;
    nick: string | undefined;
    state: string;
    features: string[];
  }[] {
    return this.#directories.map((d) => ({
      location: d.location,
      nick: d.nick,
      state: d.state,
      features: [...d.features].sort(),
    }));
  }

  /** Handshaked direct links, for status output. */
  peerStatus(): { nick: string; direction: string; location: string | undefined }[] {
    return [...this.#links]
      .filter((l) => l.state === 'handshaked' && l.nick !== undefined)
      .map((l) => ({ nick: l.nick ?? '', direction: l.conn.direction, location: l.location }));
  }

  /** True when at least one directory link is handshaked. */
  get hasDirectory(): boolean {
    return this.#directories.some((d) => d.state === 'handshaked');
  }

  /** True when a handshaked direct link to `nick` exists. */
  hasDirectLink(nick: string): boolean {
    return this.#known.get(nick)?.link?.state === 'handshaked';
  }

  /**
   * Liveness of directory links: a Tor circuit can die without the stream closing for a minute or
   * more. A handshaked link silent for {@link DIRECTORY_PROBE_IDLE_MS} gets a 798 ping if the
   * directory advertised `ping` (ng and onionmc directories answer with 799, spec §4.7; reference
   * directories are never sent one); if nothing at all arrives within
   * {@link DIRECTORY_PROBE_TIMEOUT_MS}, the link is dropped and redialed. Run by a timer; public
   * for tests.
   */
  probeDirectories(): void {
    const now = this.#now();
    for (const link of this.#directories) {
      const conn = link.conn;
      if (link.state !== 'handshaked' || conn === undefined || !link.features.has('ping')) continue;
      const liveness = conn.liveness(now, DIRECTORY_LIVENESS);
      if (liveness === 'dead') {
        conn.logger.warn(
          { directory: link.location },
          'directory node did not answer a ping; reconnecting',
        );
        this.counters.add('directory.probe-timeout');
        conn.destroy('probe-timeout');
      } else if (liveness === 'probe') {
        conn.markProbed(now);
        conn.send(MessageType.PING, '');
        this.counters.add('directory.probe');
      }
    }
  }

  // ---- directory links -------------------------------------------------------------------

  #connectDirectory(link: DirectoryLink): void {
    if (!this.#running || link.state === 'stopped') return;
    link.state = 'connecting';
    link.abort = new AbortController();
    const target = { host: link.host, port: link.port };
    this.#options.dialer.dial(target, 'directory', link.abort.signal).then(
      (socket) => {
        if (!this.#running || link.state === 'stopped') {
          socket.destroy();
          return;
        }
        this.#startDirectoryLink(link, socket);
      },
      (err: unknown) => {
        this.#logger.warn(
          { directory: link.location, reason: err instanceof Error ? err.message : String(err) },
          'cannot reach directory node',
        );
        this.#scheduleDirectoryReconnect(link);
      },
    );
  }

  #startDirectoryLink(link: DirectoryLink, socket: net.Socket): void {
    const conn = new PeerConnection(socket, {
      direction: 'outbound',
      logger: this.#logger.child({ directory: link.location }),
      now: this.#now,
    });
    link.conn = conn;
    link.state = 'handshaking';
    conn.start({
      onEnvelope: (envelope) => {
        this.#handleDirectoryEnvelope(link, envelope);
      },
      onClose: (err) => {
        this.#handleDirectoryClose(link, conn, err);
      },
    });
    // The connecting side sends 793 at once (spec §2.3).
    link.handshakeLine = this.#handshakeLine();
    conn.send(MessageType.HANDSHAKE, link.handshakeLine);
    conn.armHandshakeDeadline(this.#options.handshakeTimeoutMs ?? LINK_HANDSHAKE_TIMEOUT_MS, () => {
      conn.logger.warn('directory sent no handshake reply in time');
      conn.destroy('handshake-timeout');
    });
  }

  #handleDirectoryClose(link: DirectoryLink, conn: PeerConnection, err: Error | undefined): void {
    if (link.conn !== conn) return;
    const wasUp = link.state === 'handshaked';
    link.conn = undefined;
    if (wasUp) {
      if (this.#now() - link.handshakedAt >= link.backoff.options.stableMs) link.backoff.reset();
      this.#logger.warn({ directory: link.location, reason: err?.message }, 'lost directory node');
      this.#emit('directory', { location: link.location, nick: link.nick, up: false });
      // Nicks only this directory carried are gone for us (spec §3.2).
      for (const [nick, known] of this.#known) {
        if (
          known.directories.delete(link) &&
          known.directories.size === 0 &&
          known.link === undefined
        )
          this.#nickLeft(nick);
      }
    }
    if (link.state === 'stopped' || !this.#running) return;
    this.#scheduleDirectoryReconnect(link);
  }

  #scheduleDirectoryReconnect(link: DirectoryLink): void {
    if (link.state === 'stopped' || !this.#running) return;
    link.state = 'idle';
    const delayMs = link.reconnectNow ? 0 : link.backoff.next();
    link.reconnectNow = false;
    this.#logger.info({ directory: link.location, delayMs }, 'will reconnect to directory node');
    link.timer = setTimeout(() => {
      this.#connectDirectory(link);
    }, delayMs);
  }

  #handleDirectoryEnvelope(link: DirectoryLink, envelope: Envelope): void {
    switch (envelope.type) {
      case MessageType.DN_HANDSHAKE:
        this.#handleDirectoryHandshake(link, envelope.line);
        return;
      case MessageType.PRIVMSG:
      case MessageType.PUBMSG:
        if (link.state !== 'handshaked') {
          this.counters.add('dropped.before-handshake');
          return;
        }
        this.#handleChannelMessage(
          envelope.type,
          envelope.line,
          { kind: 'directory', location: link.location },
          link,
          undefined,
        );
        return;
      case MessageType.PEERLIST:
        if (link.state === 'handshaked') this.#handlePeerlist(link, envelope.line);
        return;
      case MessageType.PING:
        // ng sends 798 only to peers that advertised `ping`; 799 goes only to a peer that
        // advertised it too (spec §1.4, §4.7).
        if (link.features.has('ping')) link.conn?.send(MessageType.PONG, '');
        return;
      case MessageType.PONG:
        return; // the answer to our probe; that it arrived is all that counts
      case MessageType.NICK_AUTH_CHALLENGE:
        this.#handleNickAuthChallenge(link, envelope.line);
        return;
      case MessageType.NICK_AUTH_RESULT:
        this.#handleNickAuthResult(link, envelope.line);
        return;
      default:
        this.counters.add('ignored.type');
    }
  }

  /** The directory-id we expect in a challenge from `link` (spec §9.6): its onion, lower-cased. */
  #expectedDirectoryId(link: DirectoryLink): string {
    return directoryIdForEndpoint(link.host, link.port) ?? link.location.toLowerCase();
  }

  #handleNickAuthChallenge(link: DirectoryLink, line: string): void {
    const conn = link.conn;
    if (conn === undefined) return;
    const challenge = parseNickAuthChallengeLine(line);
    if (link.state !== 'authenticating' || challenge === undefined) {
      conn.logger.warn('unexpected or malformed nick-auth challenge; disconnecting');
      conn.destroy('protocol-violation');
      return;
    }
    // A proof is bound to the directory-id; sign only for the directory we dialed, so a proof
    // cannot be replayed elsewhere.
    if (challenge.directoryId !== this.#expectedDirectoryId(link)) {
      conn.logger.warn(
        { directoryId: challenge.directoryId, expected: this.#expectedDirectoryId(link) },
        'nick-auth challenge for another directory-id; disconnecting',
      );
      this.counters.add('nick-auth.wrong-directory-id');
      conn.destroy('protocol-violation');
      return;
    }
    const proof = signNickAuth(
      this.#options.identity,
      challenge.challenge,
      challenge.directoryId,
      link.handshakeLine,
    );
    conn.send(MessageType.NICK_AUTH_PROOF, buildNickAuthProofLine(proof));
  }

  #handleNickAuthResult(link: DirectoryLink, line: string): void {
    const conn = link.conn;
    if (conn === undefined) return;
    const result = parseNickAuthResultLine(line);
    if (link.state !== 'authenticating' || result === undefined || !result.verified) {
      conn.logger.warn({ code: result?.code }, 'nick authentication not accepted; disconnecting');
      conn.destroy('protocol-violation');
      return;
    }
    this.#directoryUp(link);
  }

  #handleDirectoryHandshake(link: DirectoryLink, line: string): void {
    const conn = link.conn;
    if (conn === undefined || link.state !== 'handshaking') return;
    const handshake = parseDirectoryHandshake(line);
    if (handshake === undefined) {
      this.counters.add('ignored.malformed-handshake');
      return;
    }
    const verdict = evaluateDirectoryHandshake(handshake, { network: this.#options.network });
    if (!verdict.ok) {
      conn.logger.warn(
        { reason: verdict.reason, motd: handshake.motd },
        'directory refused or unsuitable',
      );
      // accepted:false, wrong app or version: hang up. Network mismatch: the reference ignores it.
      if (verdict.disconnect) conn.destroy('rejected');
      return;
    }
    link.nick = handshake.nick;
    link.motd = handshake.motd;
    link.features = featuresOf(handshake.features);
    // Both sides offered nick_auth: the directory challenges next (spec §9.6).
    if (link.features.has('nick_auth') && this.#options.features?.nick_auth === true) {
      link.state = 'authenticating';
      return;
    }
    this.#directoryUp(link);
  }

  #directoryUp(link: DirectoryLink): void {
    const conn = link.conn;
    if (conn === undefined) return;
    conn.handshakeDone();
    conn.resetProbe();
    link.state = 'handshaked';
    link.handshakedAt = this.#now();
    conn.logger.info({ dnNick: link.nick, motd: link.motd }, 'directory node handshaked');
    this.#emit('directory', {
      location: link.location,
      nick: link.nick,
      up: true,
      ...(link.motd !== undefined ? { motd: link.motd } : {}),
    });
    // ng directories answer getpeerlist (spec §3.4); reference ones only log it, so ask only those
    // that advertise peerlist_features and stay indistinguishable to the others.
    if (link.features.has('peerlist_features')) conn.send(MessageType.GETPEERLIST, '');
    if (this.#options.role === 'maker') this.#announceOffers([link]);
  }

  #handlePeerlist(link: DirectoryLink, line: string): void {
    let joined = 0;
    let left = 0;
    for (const entry of decodePeerlist(line)) {
      if (entry.nick === this.nick) continue;
      if (entry.nick === link.nick) continue;
      if (entry.disconnected) {
        left++;
        const known = this.#known.get(entry.nick);
        if (
          known !== undefined &&
          known.directories.delete(link) &&
          known.directories.size === 0 &&
          known.link === undefined
        ) {
          this.#nickLeft(entry.nick);
        }
        continue;
      }
      if (entry.location === NOT_SERVING_ONION) continue;
      let location;
      try {
        location = parseLocation(entry.location);
      } catch {
        continue;
      }
      if (location.kind !== 'hostport') continue;
      this.#knownPeer(entry.nick).location = entry.location;
      joined++;
    }
    this.#emit('peerlist', { directory: link.location, joined, left });
  }

  #nickLeft(nick: string): void {
    this.#known.delete(nick);
    this.orderbook.removeNick(nick);
    this.#emit('nickLeave', { nick });
  }

  #knownPeer(nick: string): KnownPeer {
    let known = this.#known.get(nick);
    if (known === undefined) {
      known = {
        location: undefined,
        directories: new Set(),
        link: undefined,
        dialing: false,
        dialFailures: 0,
        nextDialAt: 0,
        lastOrderbookReplyAt: -Infinity,
      };
      this.#known.set(nick, known);
    }
    return known;
  }

  #handshakeLine(): string {
    return encodeClientHandshake({
      appName: JM_APP_NAME,
      directory: false,
      locationString: this.#ownLocation,
      protoVer: JM_PROTOCOL_VERSION,
      features: { ...this.#options.features },
      nick: this.nick,
      network: this.#options.network,
    });
  }

  // ---- direct peer links -----------------------------------------------------------------

  #acceptPeer(socket: net.Socket): void {
    const conn = new PeerConnection(socket, {
      direction: 'inbound',
      logger: this.#logger,
      now: this.#now,
    });
    this.#startPeerLink(conn, undefined);
  }

  #startPeerLink(conn: PeerConnection, expectedNick: string | undefined): PeerLink {
    const link = new PeerLink(conn, expectedNick);
    this.#links.add(link);
    conn.start({
      onEnvelope: (envelope) => {
        this.#handlePeerEnvelope(link, envelope);
      },
      onClose: () => {
        this.#handlePeerClose(link);
      },
    });
    // A reference non-directory node sends its 793 as soon as a connection exists, in either
    // direction (spec §2.3); reference takers treat us as handshaked only once they get it.
    conn.send(MessageType.HANDSHAKE, this.#handshakeLine());
    conn.armHandshakeDeadline(this.#options.handshakeTimeoutMs ?? LINK_HANDSHAKE_TIMEOUT_MS, () => {
      conn.logger.info('peer sent no handshake in time; disconnecting');
      conn.destroy('handshake-timeout');
    });
    return link;
  }

  #handlePeerEnvelope(link: PeerLink, envelope: Envelope): void {
    switch (envelope.type) {
      case MessageType.HANDSHAKE:
        this.#handlePeerHandshake(link, envelope.line);
        return;
      case MessageType.PRIVMSG:
        if (link.state !== 'handshaked') {
          this.counters.add('dropped.before-handshake');
          return;
        }
        this.#handleChannelMessage(
          envelope.type,
          envelope.line,
          { kind: 'direct' },
          undefined,
          link,
        );
        return;
      case MessageType.PING:
        if (link.features.has('ping')) link.conn.send(MessageType.PONG, '');
        return;
      default:
        // Pubmsgs and peerlists come only from directories; 795 from a peer is a protocol slip
        // that the reference logs and ignores (spec §2.5, ng CHANGELOG).
        this.counters.add('ignored.type');
    }
  }

  #handlePeerHandshake(link: PeerLink, line: string): void {
    if (link.state !== 'handshaking') return;
    const handshake = parseClientHandshake(line);
    const verdict =
      handshake === undefined
        ? undefined
        : evaluateClientHandshake(handshake, { network: this.#options.network });
    let reason: string | undefined;
    if (handshake === undefined || verdict === undefined) reason = 'malformed handshake';
    else if (!verdict.accepted) reason = verdict.reason;
    else if (!isValidNick(handshake.nick) || handshake.nick === this.nick) reason = 'unusable nick';
    else if (link.expectedNick !== undefined && handshake.nick !== link.expectedNick)
      reason = `dialed ${link.expectedNick} but ${handshake.nick} answered`;
    if (reason !== undefined || handshake === undefined) {
      link.conn.logger.warn({ reason }, 'peer handshake refused; disconnecting');
      this.counters.add('disconnected.bad-peer-handshake');
      link.conn.destroy('protocol-violation');
      return;
    }
    link.conn.handshakeDone();
    link.state = 'handshaked';
    link.nick = handshake.nick;
    link.location = handshake.locationString;
    link.features = featuresOf(handshake.features);
    const known = this.#knownPeer(handshake.nick);
    const previous = known.link;
    known.link = link;
    known.dialFailures = 0;
    if (handshake.locationString !== NOT_SERVING_ONION && known.location === undefined)
      known.location = handshake.locationString;
    if (previous !== undefined && previous !== link) previous.conn.close('replaced');
    link.conn.logger.info({ peerNick: link.nick }, 'direct peer link handshaked');
    this.#emit('peer', { nick: handshake.nick, up: true, direction: link.conn.direction });
  }

  #handlePeerClose(link: PeerLink): void {
    this.#links.delete(link);
    const wasUp = link.state === 'handshaked';
    link.state = 'closed';
    if (!wasUp || link.nick === undefined) return;
    const known = this.#known.get(link.nick);
    if (known?.link === link) {
      known.link = undefined;
      this.#emit('peer', { nick: link.nick, up: false, direction: link.conn.direction });
    }
  }

  /** Opportunistic direct dial to a nick whose location a peerlist told us (spec §4.3 step 4). */
  #maybeDial(nick: string, known: KnownPeer): void {
    if (!this.#running || known.link !== undefined || known.dialing || known.location === undefined)
      return;
    if (this.#now() < known.nextDialAt) return;
    let location;
    try {
      location = parseLocation(known.location);
    } catch {
      return;
    }
    if (location.kind !== 'hostport') return;
    known.dialing = true;
    this.#options.dialer.dial({ host: location.host, port: location.port }, 'peer').then(
      (socket) => {
        known.dialing = false;
        if (!this.#running) {
          socket.destroy();
          return;
        }
        const conn = new PeerConnection(socket, {
          direction: 'outbound',
          logger: this.#logger.child({ dialed: nick }),
          now: this.#now,
        });
        this.#startPeerLink(conn, nick);
      },
      (err: unknown) => {
        known.dialing = false;
        known.dialFailures++;
        const delay = Math.min(
          PEER_REDIAL_MAX_MS,
          PEER_REDIAL_MIN_MS * 2 ** Math.min(5, known.dialFailures - 1),
        );
        known.nextDialAt = this.#now() + delay;
        this.#logger.info(
          {
            peerNick: nick,
            reason: err instanceof Error ? err.message : String(err),
            retryInMs: delay,
          },
          'direct dial failed',
        );
      },
    );
  }

  // ---- messages --------------------------------------------------------------------------

  #handleChannelMessage(
    type: number,
    line: string,
    via: Via,
    directory: DirectoryLink | undefined,
    link: PeerLink | undefined,
  ): void {
    const parsed = parseChannelLine(line);
    if (parsed === undefined) {
      this.#drop(undefined, 'malformed');
      return;
    }
    const { from, to, message } = parsed;
    if (from === this.nick) return; // our own pubmsg coming back
    if (link !== undefined && from !== link.nick) {
      this.#drop(from, 'spoofed-sender');
      return;
    }
    if (type === MessageType.PUBMSG) {
      if (to !== PUBLIC_NICK || directory === undefined) {
        this.#drop(from, 'pubmsg-not-public');
        return;
      }
      if (!isValidNick(from)) {
        this.#drop(from, 'bad-nick');
        return;
      }
      this.#knownPeer(from).directories.add(directory);
      if (!this.#dedup.isFirst(`P${from}\n${message}`)) {
        this.counters.add('dropped.duplicate');
        return;
      }
      this.#handlePubmsg(from, message, via);
      return;
    }
    if (to !== this.nick) {
      this.#drop(from, 'not-for-us');
      return;
    }
    const verified = verifyPrivmsg(from, message);
    if (!verified.ok) {
      this.#drop(from, `bad-signature: ${verified.reason}`);
      return;
    }
    // Only a message that verified teaches us a route to its sender (spec §4.1, §4.3).
    const known = this.#knownPeer(from);
    if (directory !== undefined) known.directories.add(directory);
    if (!this.#dedup.isFirst(`M${line}`)) {
      this.counters.add('dropped.duplicate');
      return;
    }
    this.counters.add('received.privmsg');
    this.#handlePrivmsg(from, verified.cmd, verified.body, via);
  }

  #drop(from: string | undefined, reason: string): void {
    this.counters.add(`dropped.${reason.split(':')[0] ?? reason}`);
    this.#logger.info({ from, reason }, 'message dropped');
    this.#emit('dropped', { from, reason });
  }

  #handlePubmsg(from: string, message: string, via: Via): void {
    this.counters.add('received.pubmsg');
    const commands = splitCommands(message);
    for (const command of commands) {
      const offer = parseOffer(command);
      if (offer !== undefined) this.orderbook.add(from, offer, 'pubmsg');
      else if (command.startsWith('cancel ')) {
        const oid = Number(command.slice('cancel '.length));
        if (Number.isSafeInteger(oid)) this.orderbook.cancel(from, oid);
      }
    }
    // A pubmsg holding more than one orderbook request is ignored (spec §5.2, DoS rule #298).
    if (this.#options.role === 'maker' && commands.length === 1 && commands[0] === 'orderbook') {
      this.#answerOrderbook(from);
    }
    this.#emit('pubmsg', { from, message, via });
  }

  #handlePrivmsg(from: string, cmd: string, body: string, via: Via): void {
    if (OFFER_TYPES.has(cmd)) {
      for (const segment of splitCommands(`!${cmd} ${body}`)) {
        const offer = parseOffer(segment);
        if (offer !== undefined) this.orderbook.add(from, offer, 'privmsg');
      }
    }
    let delivered = body;
    const encrypted = isEncryptedCommand(cmd);
    if (this.#options.endToEnd === false) {
      this.#emit('privmsg', { from, cmd, body, via, encrypted: false });
      return;
    }
    try {
      if (encrypted) {
        // The receiver joins the tokens after the command word without spaces, then decodes
        // and decrypts (spec §5.3).
        delivered = this.#sessions.decrypt(from, body.split(' ').join(''));
      } else if (cmd === 'fill') {
        // `oid amount taker_nacl_pubkey commitment` (spec §5.2): the key is the daemon's business.
        const args = body.split(' ');
        this.#sessions.acceptFill(from, args[2] ?? '');
        args.splice(2, 1);
        delivered = args.join(' ');
      } else if (cmd === 'pubkey') {
        // `maker_nacl_pubkey [features=…]` (spec §5.2, §9.7).
        const args = body.split(' ');
        this.#sessions.acceptPubkey(from, args[0] ?? '');
        delivered = args.slice(1).join(' ');
      }
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.#drop(from, `crypto: ${reason}`);
      // The reference maker answers a bad key in !fill with an error (spec §7 init_pubkey).
      if (cmd === 'fill') this.#trySend(from, 'error', 'Invalid nacl pubkey');
      return;
    }
    this.#emit('privmsg', { from, cmd, body: delivered, via, encrypted });
  }

  #trySend(to: string, cmd: string, body: string): void {
    try {
      this.privmsg(to, cmd, body);
    } catch (err) {
      this.#logger.info(
        { to, cmd, reason: err instanceof Error ? err.message : String(err) },
        'could not send',
      );
    }
  }

  // ---- offers (jmdaemon's part of the maker) ----------------------------------------------

  /**
   * Sets the maker's offers and announces them by pubmsg, one per offer, to every handshaked
   * directory (spec §4.2, §6 step 2). Later `!orderbook` requests are answered with them.
   * @returns the number of directories they were sent to.
   */
  setOffers(offers: readonly Offer[]): number {
    this.#offers = [...offers];
    return this.#announceOffers(this.#directories);
  }

  /** The offers set by {@link setOffers}. */
  get offers(): readonly Offer[] {
    return this.#offers;
  }

  #announceOffers(directories: readonly DirectoryLink[]): number {
    let sent = 0;
    for (const link of directories) {
      if (link.state !== 'handshaked' || link.conn === undefined) continue;
      for (const offer of this.#offers) {
        link.conn.send(
          MessageType.PUBMSG,
          formatPubmsgLine(this.nick, `!${offer.type} ${formatOfferArgs(offer)}`),
        );
      }
      sent++;
    }
    return sent;
  }

  #answerOrderbook(from: string): void {
    if (this.#offers.length === 0 || !isValidNick(from)) return;
    const known = this.#knownPeer(from);
    const now = this.#now();
    if (now - known.lastOrderbookReplyAt < ORDERBOOK_REPLY_INTERVAL_MS) {
      this.counters.add('ratelimited.orderbook');
      return;
    }
    known.lastOrderbookReplyAt = now;
    const [first, ...rest] = this.#offers;
    if (first === undefined) return;
    const body = [
      formatOfferArgs(first),
      ...rest.map((o) => `${o.type} ${formatOfferArgs(o)}`),
    ].join('!');
    try {
      this.privmsg(from, first.type, body);
    } catch (err) {
      this.#logger.info(
        { to: from, reason: err instanceof Error ? err.message : String(err) },
        'cannot answer orderbook request',
      );
    }
  }

  // ---- sending ---------------------------------------------------------------------------

  /**
   * Sends a pubmsg (`message` starts with `!`) to every handshaked directory (spec §4.2).
   * @returns the number of directories it went to.
   * @throws OnionmcError `ERR_NOT_ROUTABLE` when no directory is handshaked; ProtocolError when
   *   the line would exceed 40,000 bytes.
   */
  pubmsg(message: string): number {
    if (!message.startsWith('!')) throw new OnionmcError('ERR_API', 'a pubmsg must start with "!"');
    const frame = encodeLine(
      encodeEnvelope(MessageType.PUBMSG, formatPubmsgLine(this.nick, message)),
    );
    let sent = 0;
    for (const link of this.#directories) {
      if (link.state === 'handshaked' && link.conn?.sendEncoded(frame) === true) sent++;
    }
    if (sent === 0) throw new OnionmcError('ERR_NOT_ROUTABLE', 'no directory node is connected');
    return sent;
  }

  /**
   * Signs and sends a privmsg `cmd body` to `to` (spec §4.3, §5.6): over a handshaked direct link
   * when one exists, otherwise through a random handshaked directory that has carried `to`'s
   * traffic. Also starts a direct dial when `to`'s location is known (spec §4.3 step 4).
   *
   * The daemon owns end-to-end encryption (spec §7): for `fill` the application gives
   * `oid amount commitment` and the daemon inserts a fresh NaCl public key as the third argument;
   * for `pubkey` the application gives what follows the key (usually nothing) and the daemon puts
   * its key first; `auth`, `ioauth`, `tx` and `sig` bodies are plaintext, encrypted here.
   * @returns how it was sent.
   * @throws OnionmcError `ERR_NOT_ROUTABLE` when there is no route (the reference drops such a
   *   message silently; we say so); `ERR_CRYPTO` for an encrypted command before the key exchange;
   *   `ERR_API` for a malformed request; ProtocolError when the line would exceed 40,000 bytes.
   */
  privmsg(to: string, cmd: string, body: string, options: PrivmsgOptions = {}): SendResult {
    if (to === this.nick)
      throw new OnionmcError('ERR_NOT_ROUTABLE', 'a privmsg to our own nick is not sent');
    if (!isValidNick(to)) throw new OnionmcError('ERR_API', `"${to}" is not a JoinMarket nick`);
    // Receivers drop a privmsg whose first command is in neither list (spec §5.2): refuse it here.
    if (!isPrivmsgCommandAllowed(cmd))
      throw new OnionmcError('ERR_API', `"${cmd}" is not a command a privmsg may start with`);
    const wireBody = this.#prepareBody(to, cmd, body);
    const line = signPrivmsg(this.#options.identity, to, cmd, wireBody);
    const frame = encodeLine(encodeEnvelope(MessageType.PRIVMSG, line));
    const known = this.#known.get(to);
    const directOk = options.route !== 'directory';
    if (known !== undefined && directOk) this.#maybeDial(to, known);
    const direct = directOk ? known?.link : undefined;
    if (direct?.state === 'handshaked' && direct.conn.sendEncoded(frame)) {
      this.counters.add('sent.privmsg.direct');
      return { kind: 'direct' };
    }
    const candidates = [...(known?.directories ?? [])].filter(
      (d) => d.state === 'handshaked' && d.conn !== undefined,
    );
    const chosen = candidates[Math.floor(this.#random() * candidates.length)];
    if (chosen?.conn?.sendEncoded(frame) === true) {
      this.counters.add('sent.privmsg.directory');
      return { kind: 'directory', location: chosen.location };
    }
    throw new OnionmcError(
      'ERR_NOT_ROUTABLE',
      `no route to ${to}: no direct link, and no connected directory node has carried its messages`,
    );
  }

  /** The body as it goes on the wire: NaCl keys inserted, encrypted commands encrypted (spec §7). */
  #prepareBody(to: string, cmd: string, body: string): string {
    if (this.#options.endToEnd === false) return body;
    if (isEncryptedCommand(cmd)) return this.#sessions.encrypt(to, body);
    if (cmd === 'fill') {
      const args = body.split(' ');
      if (args.length !== 3 || args.some((a) => a === '')) {
        throw new OnionmcError(
          'ERR_API',
          '!fill takes "oid amount commitment"; the daemon inserts its NaCl public key',
        );
      }
      const key = this.#sessions.startAsTaker(to);
      return [args[0], args[1], key, args[2]].join(' ');
    }
    if (cmd === 'pubkey') {
      const key = this.#sessions.makerPublicKey(to);
      return body === '' ? key : `${key} ${body}`;
    }
    return body;
  }
}
